/* The operations console's live layer: positions, orders, fills and the kill switch change in
 * place as events arrive; limit bars and the kill switch panel are re-rendered by the server. */
(function () {
  "use strict";
  const meta = JSON.parse(document.getElementById("console-meta").textContent);
  const fmt = TradeopsLive.fmt;
  const inst = s => meta.instruments[s] || {digits: 5, step: "0.01"};
  const accountName = id => meta.accounts[id] || ("account " + id);
  const MAX_ROWS = 50;

  function flash(row) { row.classList.remove("flash"); void row.offsetWidth; row.classList.add("flash"); }
  function td(text, cls) { const c = document.createElement("td"); c.textContent = text ?? ""; if (cls) c.className = cls; return c; }
  function link(href, text, title) { const c = document.createElement("td"); c.className = "mono"; const a = document.createElement("a"); a.href = href; a.textContent = text; if (title) a.title = title; c.append(a); return c; }
  // The touch a fill's order arrived on (kept since trading 0009; empty for a fill recorded before).
  function touch(p, digits) {
    const has = v => v !== null && v !== undefined && v !== "";
    return has(p.arrival_bid) && has(p.arrival_ask) ? fmt.price(p.arrival_bid, digits) + " / " + fmt.price(p.arrival_ask, digits) : "";
  }
  function badge(text) { const c = document.createElement("td"); const b = document.createElement("span"); b.className = "badge " + text; b.textContent = text; c.append(b); return c; }
  function prepend(tableId, key, cells) {
    const body = document.querySelector("#" + tableId + " tbody");
    body.querySelectorAll("tr.empty-row").forEach(r => r.remove());
    let row = key ? body.querySelector('tr[data-key="' + CSS.escape(key) + '"]') : null;
    const fresh = !row;
    if (fresh) { row = document.createElement("tr"); if (key) row.dataset.key = key; }
    row.replaceChildren(...cells);
    if (fresh) body.prepend(row);
    flash(row);
    while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
  }

  /* Server-rendered fragments, re-fetched (debounced) when an event says they changed. Fetches
   * can overlap and answer out of order: only the latest one asked for is applied, so an older
   * answer never overwrites a newer one (a kill switch shown engaged after its release). */
  const fragments = {}, asked = {};
  function refresh(name, targetId) {
    if (fragments[name]) return;
    fragments[name] = setTimeout(() => {
      fragments[name] = null;
      const n = asked[name] = (asked[name] || 0) + 1;
      fetch(location.pathname + "?fragment=" + name, {credentials: "same-origin"}).then(r => r.ok ? r.text() : "").then(html => {
        if (html && asked[name] === n) document.getElementById(targetId).innerHTML = html;
      });
    }, 400);
  }

  const on = {
    "position.changed": p => {
      const key = p.account_id + ":" + p.symbol;
      const row = document.querySelector('#accounts tr[data-key="' + CSS.escape(key) + '"]');
      if (row) {
        const i = inst(p.symbol);
        row.querySelector('[data-field="net"]').textContent = fmt.lots(p.net_quantity, i.step);
        row.querySelector('[data-field="avg"]').textContent = fmt.price(p.average_price, i.digits);
        const r = row.querySelector('[data-field="realised"]'); r.textContent = (Number(p.realised_pnl) > 0 ? "+" : "") + fmt.money(p.realised_pnl); r.className = "num " + fmt.sign(p.realised_pnl);
        const u = row.querySelector('[data-field="unrealised"]'); u.textContent = (Number(p.unrealised_pnl) > 0 ? "+" : "") + fmt.money(p.unrealised_pnl); u.className = "num " + fmt.sign(p.unrealised_pnl);
        flash(row);
      }
      refresh("accounts", "accounts-body");
    },
    "order.lifecycle": (p, e) => {
      const i = inst(p.symbol);
      const price = p.average_fill_price || p.limit_price;
      prepend("orders-table", p.client_order_id, [
        td(fmt.utc(p.ts || e.occurred_at), "time"), link("/orders/" + encodeURIComponent(p.client_order_id) + "/", p.client_order_id),
        td(accountName(p.account_id)), td(p.side), td(p.symbol), td(p.order_type),
        td(fmt.lots(p.quantity, i.step), "num"), td(fmt.lots(p.filled_quantity, i.step), "num"), td(price ? fmt.price(price, i.digits) : "", "num"),
        badge(p.status), td(p.reason, "wrap"),
      ]);
    },
    "execution.fill": p => {
      const i = inst(p.symbol);
      prepend("fills-table", p.account_id + ":" + p.broker_deal_id, [
        td(fmt.utc(p.ts), "time"), td(p.broker_deal_id, "mono"), link("/orders/" + encodeURIComponent(p.client_order_id) + "/", p.client_order_id),
        td(accountName(p.account_id)), td(p.side), td(p.symbol), td(fmt.lots(p.quantity, i.step), "num"), td(fmt.price(p.price, i.digits), "num"),
        td(touch(p, i.digits), "num"), td(p.arrival_mid ? fmt.price(p.arrival_mid, i.digits) : "", "num"),
      ]);
    },
    "killswitch.changed": () => { refresh("kill", "kill-body"); refresh("banner", "kill-banner"); refresh("accounts", "accounts-body"); refresh("breakers", "breakers-body"); },
    "breaker.changed": () => { refresh("breakers", "breakers-body"); },
    // Operator alerts: the server renders the panel (it alone tells an operator alert from a
    // surveillance one, which a compliance officer's page also receives and must not list here).
    "alert.raised": () => { refresh("alerts", "alerts-body"); },
  };
  TradeopsLive.connect({status: document.getElementById("live-status"), on: on, onCatchUp: () => { refresh("accounts", "accounts-body"); refresh("alerts", "alerts-body"); }});

  /* Marks move between fills with no event: the execution worker writes each account's marks and
   * figures (equity, P&L, daily loss, drawdown) on its wall-clock cadence, derived data without an
   * event (trading.orders.services.account_state_save). Re-read them while the page is shown, or
   * the figures and limit bars stand still between fills (until 2026-12-06, wip/walk50: a 300-bar
   * replay moved equity by 4,800 with no fill, and an open console still showed the first figure). */
  const accountsCard = document.getElementById("accounts");
  const every = Number(accountsCard && accountsCard.dataset.refreshMs) || 5000;
  setInterval(() => {
    if (document.hidden) return;
    refresh("accounts", "accounts-body");
    refresh("breakers", "breakers-body");
  }, every);

  // Equity and drawdown
  const select = document.getElementById("equity-account");
  const canvas = document.getElementById("equity-chart");
  let chart = null;
  function drawEquity() {
    if (!select || !canvas) return;
    fetch("/console/accounts/" + select.value + "/equity.json", {credentials: "same-origin"}).then(r => r.json()).then(d => {
      const pts = d.points.map(p => ({x: Date.parse(p.t), e: p.equity, dd: p.drawdown * 100}));
      if (chart) { chart.destroy(); chart = null; }
      const note = document.getElementById("equity-note");
      canvas.parentElement.hidden = pts.length < 2;
      if (pts.length < 2) {
        note.textContent = d.has_snapshot
          ? "Not enough history yet for " + d.account + ": the curve starts with its second recorded fill or mark."
          : "No equity figures yet for " + d.account + ": the execution worker has not marked this account.";
        return;
      }
      const rebases = d.points.filter(p => p.rebase);
      note.textContent = "From the position records in the audit trail (each fill and mark), event time; " + pts.length + " points."
        + (rebases.length ? " Drawdown measured from the peak equity re-based at "
          + rebases[rebases.length - 1].t.replace("T", " ").slice(0, 19) + " UTC (re-base " + rebases[rebases.length - 1].rebase + ")." : "");
      chart = new Chart(canvas, {
        type: "line",
        data: {datasets: [
          {label: "equity (" + d.currency + ")", data: pts.map(p => ({x: p.x, y: p.e})), borderColor: "#1f5fbf", pointRadius: 0, borderWidth: 1.5, yAxisID: "y"},
          {label: "drawdown (%)", data: pts.map(p => ({x: p.x, y: -p.dd})), borderColor: "#c9302c", backgroundColor: "rgba(201,48,44,.12)", fill: "origin", pointRadius: 0, borderWidth: 1, yAxisID: "dd"},
        ]},
        options: {
          animation: false, maintainAspectRatio: false, parsing: false, interaction: {mode: "index", intersect: false},
          scales: {
            x: {type: "linear", ticks: {maxTicksLimit: 6, callback: function (v) {
              const span = this.max - this.min, iso = new Date(v).toISOString();
              return span < 86400000 ? iso.slice(11, 19) : (span < 30 * 86400000 ? iso.slice(5, 16).replace("T", " ") : iso.slice(0, 10));
            }}},
            y: {position: "left", ticks: {callback: v => fmt.money(v)}},
            dd: {position: "right", max: 0, grid: {drawOnChartArea: false}, ticks: {callback: v => v.toFixed(1) + " %"}},
          },
          plugins: {tooltip: {callbacks: {title: items => new Date(items[0].parsed.x).toISOString().replace("T", " ").slice(0, 23) + " UTC"}}},
        },
      });
    });
  }
  if (select) { select.addEventListener("change", drawEquity); drawEquity(); }
})();
