/* The case view's timeline: a price line with the orders on it and the fills (Chart.js, served by
 * the app). x is event time (UTC, ms since the epoch); y is price. Orders are segments from
 * placement to their end (dashed when cancelled), buy blue and sell red; fills are triangles. */
(function () {
  "use strict";
  const BUY = "#1f5fbf", SELL = "#c9302c", QUOTE = "#7a8594";
  const t = iso => (iso ? Date.parse(iso) : null);
  function hhmmss(ms) { return new Date(ms).toISOString().slice(11, 23); }

  function draw(canvas, data) {
    const end = t(data.end);
    const datasets = [];
    if (data.quotes.length) {
      datasets.push({
        label: "price (" + [...new Set(data.quotes.map(q => q.source))].join(", ") + ")",
        data: data.quotes.map(q => ({x: t(q.t), y: q.price})),
        borderColor: QUOTE, backgroundColor: QUOTE, borderWidth: 1.5, pointRadius: 2, stepped: true, order: 3,
        kind: "quote",
      });
    }
    data.orders.forEach(o => {
      if (o.price === null || o.price === undefined || !o.placed) return;
      const colour = o.side === "buy" ? BUY : SELL;
      const stop = t(o.ended) || end;
      datasets.push({
        label: o.side + " orders", kind: o.side + "-order", order: 2,
        data: [{x: t(o.placed), y: o.price, o: o}, {x: stop, y: o.price, o: o}],
        borderColor: colour, backgroundColor: colour, borderWidth: 2.5,
        borderDash: o.end_state === "CANCELLED" ? [5, 3] : [], pointRadius: [3, 0], pointStyle: "rect",
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
          legend: {labels: {filter: (item, chart) => {
            const ds = chart.datasets[item.datasetIndex];
            return chart.datasets.findIndex(d => d.kind === ds.kind) === item.datasetIndex;
          }}},
          tooltip: {callbacks: {
            title: items => hhmmss(items[0].parsed.x) + " UTC",
            label: item => {
              const raw = item.raw;
              if (raw.o) return raw.o.side + " " + (raw.o.qty ?? "") + " @ " + raw.o.price + " · " + raw.o.id + " (" + raw.o.end_state + ")";
              if (raw.f) return "fill " + raw.f.side + " " + (raw.f.qty ?? "") + " @ " + raw.f.price + " · " + raw.f.order;
              return "price " + raw.y;
            },
          }},
        },
      },
    });
  }
  window.TradeopsTimeline = {draw: draw};
})();
