// How much of a decisive object (weapon, unclothed figure) the demo's model
// can see: draws N scenes per subset (normal / hard) with the synthetic
// set's generator and prints the share of the image the decisive objects
// cover and how many patches that is at a given model resolution and patch
// size (before occlusion; the hard subset then hides 15-40% of it). Under one
// patch, the patch grid cannot carry the object's shape.
//
//   node dist/bench/demo_hard_visibility.js [--n 600] [--size 96] [--grids 32/8,64/8,96/8,96/6,96/4]
import { hash32, Rng } from "../src/data/rng.js";
import { renderScene } from "../src/data/synth/scene.js";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const quantile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))];

const n = Number(arg("n", "600"));
const size = Number(arg("size", "96"));
const grids = arg("grids", "32/8,64/8,96/8,96/6,96/4").split(",").map((g) => g.split("/").map(Number) as [number, number]);
for (const hard of [false, true]) {
  const area: number[] = [];
  const hidden: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = renderScene({ labels: i % 2 ? ["weapons"] : ["nudity"], hard, size }, new Rng(hash32("visibility", i)));
    area.push(r.subjectArea);
    hidden.push(r.hidden);
  }
  const q = (f: (a: number) => number) => [0.1, 0.5, 0.9].map((p) => f(quantile(area, p)).toFixed(1)).join(" / ");
  console.log(`${hard ? "hard" : "normal"} (${n} offensive scenes): object area p10/p50/p90 = ${q((a) => a * 100)} % of the image; hidden p50 = ${(quantile(hidden, 0.5) * 100).toFixed(0)} %`);
  for (const [px, patch] of grids) console.log(`  model input ${px} px, ${patch} px patches: object covers ${q((a) => (a * px * px) / (patch * patch))} patches (p10/p50/p90)`);
}
