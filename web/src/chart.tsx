// Spend over time, drawn by uPlot (a small, fast canvas chart library), with the same points
// as a table for those who do not see the canvas.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Money } from "./api";

export function SpendChart({ points }: { points: { start: string; amount: Money; count: number }[] }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const currency = points[0]?.amount.currency ?? "";
    // Minor units to major for the axis, by the currency's exponent as the server knows it
    // (0 for JPY, 3 for KWD).
    const scale = 10 ** (points[0]?.amount.exponent ?? 2);
    const xs = points.map((p) => Date.parse(`${p.start}T00:00:00Z`) / 1000);
    const ys = points.map((p) => p.amount.amount / scale);
    const plot = new uPlot(
      {
        width: Math.max(240, el.clientWidth),
        height: 200,
        legend: { show: false },
        // From the data itself, two days either side: for a single point uPlot pads the time
        // scale by a thousand days (a milliseconds/seconds slip) before any range callback.
        scales: { x: { time: true, range: () => [xs[0] - 2 * 86_400, xs[xs.length - 1] + 2 * 86_400] } },
        series: [{}, { label: `Spend (${currency.toUpperCase()})`, stroke: "#3b6fd4", fill: "rgba(59,111,212,0.15)", paths: uPlot.paths.bars?.({ size: [0.8, 40] }) }],
        axes: [{}, { size: 60 }],
      },
      [xs, ys],
      el,
    );
    const resize = () => plot.setSize({ width: Math.max(240, el.clientWidth), height: 200 });
    addEventListener("resize", resize);
    return () => { removeEventListener("resize", resize); plot.destroy(); };
  }, [points]);
  // The canvas says nothing to a screen reader: a summary names it, and the same points are a
  // table one click away, reachable by keyboard.
  const top = points.reduce<(typeof points)[number] | null>((m, p) => (m === null || p.amount.amount > m.amount.amount ? p : m), null);
  const label = top
    ? `Spend over time: ${points.length} ${points.length === 1 ? "period" : "periods"} from ${points[0].start} to ${points[points.length - 1].start}; highest ${top.amount.formatted} from ${top.start}.`
    : "Spend over time: none.";
  return (
    <>
      <div class="chart" ref={host} data-testid="chart" role="img" aria-label={label} />
      <details class="chart-table">
        <summary>The chart as a table</summary>
        <table class="activity" data-testid="chart-table">
          <thead><tr><th>From</th><th class="num">Spend</th><th class="num">Purchases</th></tr></thead>
          <tbody>{points.map((p) => (
            <tr key={p.start}><td>{p.start}</td><td class="num">{p.amount.formatted}</td><td class="num">{p.count}</td></tr>
          ))}</tbody>
        </table>
      </details>
    </>
  );
}
