/* tradeops live screens: one WebSocket (/ws/live/), reconnect with back-off, catch up.
 *
 * The server says hello with its clock ("now"); every pushed event carries "pushed_at". After a
 * dropped connection the page reconnects and asks for everything recorded since the last of
 * those it saw ({"type": "catch_up", "since": ...}); the answer holds the same kinds of events,
 * rebuilt from the system of record, which the page applies like live ones (they are upserts, so
 * an event seen twice changes nothing). No reload, nothing missed.
 *
 * The page's first connection catches up too, from when the server rendered it ("since", or the
 * status element's data-since: the context processor's rendered_at): what was recorded between
 * the render and the socket joining its groups would otherwise be missed.
 *
 * A frame holds one event, or {"type": "batch", "events": [...]} applied in order; a batch with
 * "gap_since" says frames to this page were dropped on the server: the page catches up from the
 * earlier of that and its cursor, over the open connection.
 *
 * Numbers follow the server's rules (tradeops/core/formatting.py): lots to the instrument's
 * volume step, prices to its digits, money to 2 places with separators, UTC times to the ms.
 */
(function () {
  "use strict";

  function decimalsOf(step) {
    const s = String(step || "0.01");
    if (s.indexOf("e-") >= 0) return parseInt(s.split("e-")[1], 10);
    const dot = s.indexOf(".");
    if (dot < 0) return 0;
    return s.slice(dot + 1).replace(/0+$/, "").length;
  }
  function fixed(value, places, separators) {
    if (value === null || value === undefined || value === "") return "";
    const n = Number(value);
    if (!isFinite(n)) return String(value);
    return separators
      ? n.toLocaleString("en-GB", {minimumFractionDigits: places, maximumFractionDigits: places})
      : n.toFixed(places);
  }
  const fmt = {
    lots: (v, step) => fixed(v, decimalsOf(step), false),
    price: (v, digits) => fixed(v, digits === undefined ? 5 : digits, false),
    money: v => fixed(v, 2, true),
    utc: iso => {
      if (!iso) return "";
      const d = new Date(iso);
      if (isNaN(d)) return String(iso);
      return d.toISOString().replace("T", " ").replace("Z", "");
    },
    sign: v => (Number(v) < 0 ? "neg" : "pos"),
  };

  function connect(options) {
    const status = options.status;
    const on = options.on || {};
    const renderedAt = options.since || (status && status.dataset.since) || null;
    let cursor = null, delay = 500, ws = null, connectedOnce = false, closedByPage = false, pauseMs = 0;
    const state = {received: 0, caughtUp: 0, reconnects: 0, gaps: 0, catchUps: 0};

    function setStatus(text, cls) { if (status) { status.textContent = text; status.className = "badge " + cls; } }
    function apply(event) {
      if (event.pushed_at && (!cursor || event.pushed_at > cursor)) cursor = event.pushed_at;
      const handler = on[event.type];
      if (handler) handler(event.payload, event);
    }
    function open() {
      ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/live/");
      ws.onmessage = msg => {
        const e = JSON.parse(msg.data);
        if (e.type === "hello") {
          setStatus("live", "live");
          /* After a dropped connection: from the last event seen. On the first one: from when the
           * page was rendered (events already pushed to the group before it joined). */
          const since = connectedOnce ? cursor : renderedAt;
          if (since) {
            if (!cursor || since > cursor) cursor = since;
            ws.send(JSON.stringify({type: "catch_up", since: since}));
            state.catchUps += 1;
            setStatus("catching up…", "warn");
          } else {
            cursor = e.now;
          }
          connectedOnce = true;
          delay = 500;
          return;
        }
        if (e.type === "catch_up") {
          (e.events || []).forEach(apply);
          state.caughtUp += (e.events || []).length;
          if (e.now && (!cursor || e.now > cursor)) cursor = e.now;
          setStatus("live", "live");
          if (options.onCatchUp) options.onCatchUp(e.events || []);
          return;
        }
        if (e.type === "batch") {
          /* Several events in one frame, in commit order. ``gap_since``: frames to this page's
           * group were dropped on the server (the channel layer was too slow): ask for what was
           * recorded since the first one dropped, as after a dropped connection. */
          const events = e.events || [];
          const gapFrom = e.gap_since && cursor && e.gap_since > cursor ? cursor : e.gap_since;
          events.forEach(apply);
          state.received += events.length;
          if (gapFrom) {
            state.gaps += 1;
            state.catchUps += 1;
            ws.send(JSON.stringify({type: "catch_up", since: gapFrom}));
            setStatus("catching up…", "warn");
          }
          return;
        }
        state.received += 1;
        apply(e);
      };
      ws.onclose = ev => {
        if (ev.code === 4401) { setStatus("signed out", "down"); location.href = "/login/?next=" + encodeURIComponent(location.pathname); return; }
        if (closedByPage) return;
        state.reconnects += 1;
        setStatus("reconnecting…", "down");
        setTimeout(open, Math.max(delay, pauseMs));
        pauseMs = 0;
        delay = Math.min(delay * 2, 10000);
      };
    }
    open();
    return {
      state: state,
      cursor: () => cursor,
      /* Drop the connection as a network failure would, staying away ``ms`` (tests; the page
       * reconnects by itself and catches up). */
      drop: ms => { pauseMs = ms || 0; if (ws) ws.close(4000, "dropped"); },
      close: () => { closedByPage = true; if (ws) ws.close(1000); },
    };
  }

  window.TradeopsLive = {
    connect: function (options) { const c = connect(options); window.TradeopsLive.current = c; return c; },
    fmt: fmt,
  };
})();
