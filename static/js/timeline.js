/* The case view's timeline: a price line with the orders on it and the fills (Chart.js, served by
 * the app). x is event time (UTC, ms since the epoch); y is price. Orders are segments from
 * placement to their end (dashed when cancelled), buy blue and sell red, each marked with the alert
 * that names it (the placement point's shape, one per alert of the case; thin: the subject's other
 * orders, context); fills are triangles; the bid and ask when each order arrived are a shaded band
 * (the touch its fills are measured against). */
(function () {
  "use strict";
  const ALERT_SHAPES = ["rect", "circle", "rectRot", "star", "crossRot", "rectRounded", "cross"];
  const INK = "#444c56", BUY = "#1f5fbf", SELL = "#c9302c", QUOTE = "#7a8594", TOUCH = "#b08a2e", TOUCH_BAND = "rgba(176, 138, 46, .14)";
  const t = iso => (iso ? Date.parse(iso) : null);
  function hhmmss(ms) { return new Date(ms).toISOString().slice(11, 23); }

  function draw(canvas, data) {
    const end = t(data.end);
    const datasets = [];
    // The bid and ask quoted when each order arrived (the touch its fills are measured against: a
    // buy against the ask, a sell against the bid) are a band of their own, not points of the price
    // line: mixed into one stepped line the mid, bid and ask of one instant would zigzag.
    const touch = side => data.quotes.filter(q => q.source === side).map(q => ({x: t(q.t), y: q.price, q: q}));
    const prices = data.quotes.filter(q => q.source !== "bid" && q.source !== "ask");
    if (prices.length) {
      datasets.push({
        label: "price (" + [...new Set(prices.map(q => q.source))].join(", ") + ")",
        data: prices.map(q => ({x: t(q.t), y: q.price})),
        borderColor: QUOTE, backgroundColor: QUOTE, borderWidth: 1.5, pointRadius: 2, stepped: true, order: 3,
        kind: "quote",
      });
    }
    const bids = touch("bid"), asks = touch("ask");
    if (bids.length && asks.length) {
      const line = {borderColor: TOUCH, borderWidth: 1, borderDash: [4, 3], pointRadius: 7, pointStyle: "line", pointBorderWidth: 2, stepped: true, order: 4};
      datasets.push({...line, label: "bid / ask at arrival (the touch)", kind: "touch", data: bids, backgroundColor: TOUCH});
      // filled down to the bid (the dataset before): the band is the spread the order arrived on
      datasets.push({...line, label: "ask at arrival", kind: "touch", data: asks, backgroundColor: TOUCH_BAND, fill: "-1"});
    }
    // Every alert of the case has its orders drawn, each marked with its alert: the point where the
    // order was placed takes the alert's shape (named in the legend and the tooltip); the subject's
    // other orders in the window, named by no alert, are thinner context.
    const alerts = data.alerts || [];
    const alertName = {};
    alerts.forEach((a, i) => { alertName[a.id] = a.label; a.shape = ALERT_SHAPES[i % ALERT_SHAPES.length]; });
    const named = ids => (ids || []).map(id => alertName[id] || ("alert #" + id)).join(", ");
    // the legend names each alert by its shape alone (in neutral ink: its orders are blue or red by side)
    alerts.filter(a => data.orders.some(o => (o.alerts || []).includes(a.id))).forEach(a => datasets.push({
      label: a.label + " orders", kind: "legend", data: [], pointStyle: a.shape, order: 5,
      borderColor: INK, backgroundColor: INK,
    }));
    data.orders.forEach(o => {
      if (o.price === null || o.price === undefined || !o.placed) return;
      const colour = o.side === "buy" ? BUY : SELL;
      const stop = t(o.ended) || end;
      const first = alerts.find(a => (o.alerts || []).includes(a.id));
      datasets.push({
        label: first ? first.label + " orders" : "other orders (context)",
        kind: first ? "alert-" + first.id : "context", order: 2, inLegend: !first,
        data: [{x: t(o.placed), y: o.price, o: o}, {x: stop, y: o.price, o: o}],
        borderColor: colour, backgroundColor: colour, borderWidth: first ? 2.5 : 1,
        borderDash: o.end_state === "CANCELLED" ? [5, 3] : [],
        pointRadius: first ? [5, 0] : [2, 0], pointStyle: first ? first.shape : "line",
      });
    });
    if (data.fills.length) {
      datasets.push({
        type: "scatter", label: "fills", kind: "fill", order: 1,
        data: data.fills.map(f => ({x: t(f.t), y: f.price, f: f})),
        pointStyle: "triangle", pointRadius: 8,
        backgroundColor: data.fills.map(f => (f.side === "buy" ? BUY : SELL)), borderColor: "#111", borderWidth: 1,
      });
    }
    return new Chart(canvas, {
      type: "line",
      data: {datasets: datasets},
      options: {
        animation: false, maintainAspectRatio: false, parsing: false, normalized: true,
        interaction: {mode: "nearest", intersect: false},
        scales: {
          x: {type: "linear", min: t(data.start), max: end, ticks: {callback: v => hhmmss(v).slice(0, 8), maxTicksLimit: 8},
              title: {display: true, text: "event time (UTC)"}},
          y: {title: {display: true, text: data.symbol + " price"}, ticks: {callback: v => Number(v).toFixed(5).replace(/0+$/, "").replace(/\.$/, "")}},
        },
        plugins: {
          legend: {labels: {usePointStyle: true, filter: (item, chart) => {
            const ds = chart.datasets[item.datasetIndex];
            if (ds.kind === "legend") return true;
            if (ds.inLegend === false) return false;
            return chart.datasets.findIndex(d => d.kind === ds.kind) === item.datasetIndex;
          }}},
          tooltip: {callbacks: {
            title: items => hhmmss(items[0].parsed.x) + " UTC",
            label: item => {
              const raw = item.raw;
              if (raw.o) return raw.o.side + " " + (raw.o.qty ?? "") + " @ " + raw.o.price + " · " + raw.o.id + " (" + raw.o.end_state + ")" + ((raw.o.alerts || []).length ? " · " + named(raw.o.alerts) : " · context");
              if (raw.f) return "fill " + raw.f.side + " " + (raw.f.qty ?? "") + " @ " + raw.f.price + " · " + raw.f.order + ((raw.f.alerts || []).length ? " · " + named(raw.f.alerts) : "");
              if (raw.q) return raw.q.source + " at arrival " + raw.y;
              return "price " + raw.y;
            },
          }},
        },
      },
    });
  }
  window.TradeopsTimeline = {draw: draw};
})();
