/* The LLMOps view's charts: every <canvas data-chart='{spec}'> becomes a Chart.js chart (static/chart.umd.min.js,
   bundled, nothing loaded from the internet). A spec is plain data written by llmops/view/charts.py:
   {kind, labels, datasets: [{label, data, color, colors, low, high, tips, showLine, dashed, pointStyle, rotation}],
    x: {title, type, ticks}, y: {title, type, ticks}, horizontal, stacked, thresholds: [{axis, value, label, color}]}
   low/high draw whiskers (intervals, stderr) along the value axis; thresholds draw dashed lines across the plot;
   tips are each point's tooltip. When a chart is drawn its canvas gets data-rendered="<points per dataset>". */
(function () {
  "use strict";

  const intervals = {
    id: "llmopsIntervals",
    afterDatasetsDraw(chart) {
      const ctx = chart.ctx;
      const horizontal = !!chart.options.llmopsHorizontal;
      chart.data.datasets.forEach((ds, i) => {
        if (!ds.low || !ds.high || !chart.isDatasetVisible(i)) return;
        const meta = chart.getDatasetMeta(i);
        const scale = chart.scales[horizontal ? meta.xAxisID : meta.yAxisID];
        ctx.save();
        ctx.lineWidth = 1.5;
        meta.data.forEach((el, j) => {
          const lo = ds.low[j], hi = ds.high[j];
          if (lo === null || hi === null || lo === undefined || hi === undefined) return;
          ctx.strokeStyle = (ds.colors && ds.colors[j]) || ds.borderColor || "#333";
          const a = scale.getPixelForValue(lo), b = scale.getPixelForValue(hi);
          ctx.beginPath();
          if (horizontal) {
            ctx.moveTo(a, el.y); ctx.lineTo(b, el.y);
            ctx.moveTo(a, el.y - 4); ctx.lineTo(a, el.y + 4); ctx.moveTo(b, el.y - 4); ctx.lineTo(b, el.y + 4);
          } else {
            ctx.moveTo(el.x, a); ctx.lineTo(el.x, b);
            ctx.moveTo(el.x - 4, a); ctx.lineTo(el.x + 4, a); ctx.moveTo(el.x - 4, b); ctx.lineTo(el.x + 4, b);
          }
          ctx.stroke();
        });
        ctx.restore();
      });
    },
  };

  const thresholds = {
    id: "llmopsThresholds",
    afterDatasetsDraw(chart) {
      const lines = chart.options.llmopsThresholds || [];
      const ctx = chart.ctx, area = chart.chartArea;
      lines.forEach((t) => {
        const scale = chart.scales[t.axis === "x" ? "x" : "y"];
        const p = scale.getPixelForValue(t.value);
        ctx.save();
        ctx.strokeStyle = t.color || "#c53030";
        ctx.setLineDash([6, 4]);
        ctx.beginPath();
        if (t.axis === "x") { ctx.moveTo(p, area.top); ctx.lineTo(p, area.bottom); }
        else { ctx.moveTo(area.left, p); ctx.lineTo(area.right, p); }
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = t.color || "#c53030";
        ctx.font = "11px system-ui, sans-serif";
        if (t.label) ctx.fillText(t.label, t.axis === "x" ? p + 3 : area.left + 4, t.axis === "x" ? area.top + 10 : p - 3);
        ctx.restore();
      });
    },
  };

  function axis(a, stacked) {
    const out = { title: { display: !!(a && a.title), text: (a && a.title) || "" }, stacked: !!stacked };
    if (a && a.type) out.type = a.type;
    if (a && a.min !== undefined) out.min = a.min;
    if (a && a.max !== undefined) out.max = a.max;
    if (a && a.ticks) {
      out.ticks = { autoSkip: false, callback: (v) => (Number.isInteger(v) ? (a.ticks[v] ?? "") : "") };
      out.afterBuildTicks = (scale) => { scale.ticks = a.ticks.map((_, i) => ({ value: i })); };
      out.min = -0.5; out.max = a.ticks.length - 0.5;
      if (a.reverse) out.reverse = true;
    }
    if (a && a.beginAtZero) out.beginAtZero = true;
    if (a && a.integer) out.ticks = { precision: 0, stepSize: 1 };
    return out;
  }

  function dataset(d, kind) {
    const color = d.color || "#2b6cb0";
    const out = {
      label: d.label, data: d.data, low: d.low, high: d.high, tips: d.tips, colors: d.colors,
      borderColor: d.borderColors || color, backgroundColor: d.colors || color,
      pointBackgroundColor: d.colors || color, pointBorderColor: d.colors || color,
      pointRadius: d.radius || (kind === "bar" ? undefined : 4), pointHoverRadius: 7,
      showLine: !!d.showLine, borderWidth: d.borderColors ? 3 : (d.showLine ? 2 : 1),
      borderDash: d.dashed ? [6, 4] : undefined, stack: d.stack, type: d.type,
      pointStyle: d.pointStyle || "circle", rotation: d.rotation || 0, order: d.order || 0,
    };
    if (d.type === "bar" || (kind === "bar" && !d.type)) out.borderColor = d.borderColors || color;
    return out;
  }

  function draw(canvas) {
    const spec = JSON.parse(canvas.dataset.chart);
    const kind = spec.kind || "scatter";
    const chart = new Chart(canvas, {
      type: kind,
      data: { labels: spec.labels, datasets: spec.datasets.map((d) => dataset(d, kind)) },
      plugins: [intervals, thresholds],
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        llmopsHorizontal: !!spec.horizontal, llmopsThresholds: spec.thresholds || [],
        interaction: { mode: "nearest", intersect: kind !== "bar" },
        scales: { x: axis(spec.x, spec.stacked), y: axis(spec.y, spec.stacked) },
        plugins: {
          legend: { display: spec.legend !== false },
          tooltip: {
            callbacks: {
              label(item) {
                const tips = item.dataset.tips;
                if (tips && tips[item.dataIndex]) return tips[item.dataIndex];
                return `${item.dataset.label}: ${item.formattedValue}`;
              },
            },
          },
        },
      },
    });
    canvas.dataset.rendered = chart.data.datasets.map((d) => d.data.length).join(",");
  }

  function start() {
    document.querySelectorAll("canvas[data-chart]").forEach((c) => {
      try { draw(c); } catch (e) { c.dataset.error = String(e); c.insertAdjacentText("afterend", `chart failed: ${e}`); }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
