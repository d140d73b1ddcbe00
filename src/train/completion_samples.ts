// Sample completions of a GRPO step, for people to read: which prompt, its
// label, what the model wrote, how the parser read it, each reward
// function's raw score, the weighted total and the advantage it got. Written
// to completions.jsonl (one JSON object per completion) and, as a Markdown
// table, to TensorBoard's Text dashboard.

/** One logged completion (a line of completions.jsonl). */
export interface CompletionRecord {
  step: number;
  /** The example's id. */
  prompt_id: string;
  /** Its true categories ([] = safe). */
  labels: string[];
  /** Which of the step's prompts (its group) and which of its G completions. */
  group: number;
  index_in_group: number;
  completion: string;
  /** How the answer parser read it. */
  parsed: "safe" | "offensive" | "unparseable";
  /** Each reward function's raw (unweighted) score; null = not applicable. */
  rewards: Record<string, number | null>;
  /** The weighted total (null when every function said not applicable). */
  reward: number | null;
  advantage: number;
}

/**
 * Which completions to log: one per group first (groups in order), then a
 * second one per group, and so on, up to `count`.
 */
export function pickCompletionRows(groups: number, G: number, count: number): number[] {
  const rows: number[] = [];
  for (let k = 0; k < G && rows.length < count; k++) {
    for (let g = 0; g < groups && rows.length < count; g++) rows.push(g * G + k);
  }
  return rows;
}

/** What a round gives per completion row. */
export interface RoundView {
  G: number;
  promptIds: string[];
  labels: string[][];
  texts: string[];
  parsed: ("safe" | "offensive" | "unparseable")[];
  perFunction: Record<string, ArrayLike<number>>;
  rewards: ArrayLike<number>;
  advantages: ArrayLike<number>;
}

const orNull = (v: number): number | null => (Number.isNaN(v) ? null : v);

export function completionRecords(step: number, r: RoundView, rows: number[]): CompletionRecord[] {
  return rows.map((i) => {
    const group = Math.floor(i / r.G);
    return {
      step,
      prompt_id: r.promptIds[group],
      labels: r.labels[group],
      group,
      index_in_group: i % r.G,
      completion: r.texts[i],
      parsed: r.parsed[i],
      rewards: Object.fromEntries(Object.entries(r.perFunction).map(([k, v]) => [k, orNull(v[i])])),
      reward: orNull(r.rewards[i]),
      advantage: r.advantages[i],
    };
  });
}

/** Table cells: no line breaks or pipes (they would end the cell), code spans for the model's text. */
const cell = (s: string): string => s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ⏎ ");
const num = (v: number | null): string => (v === null ? "n/a" : String(Number(v.toFixed(4))));

/** A Markdown table of the records (TensorBoard's Text dashboard renders it). */
export function completionsMarkdown(records: readonly CompletionRecord[]): string {
  if (records.length === 0) return "(no completions)";
  const fns = Object.keys(records[0].rewards);
  const head = ["prompt", "label", "completion", "parsed", ...fns, "reward", "advantage"];
  const rows = records.map((r) => [
    cell(r.prompt_id),
    r.labels.length ? cell(r.labels.join("+")) : "safe",
    r.completion === "" ? "(empty)" : `\`${cell(r.completion).replace(/`/g, "'")}\``,
    r.parsed,
    ...fns.map((f) => num(r.rewards[f])),
    num(r.reward),
    num(r.advantage),
  ]);
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((c) => `| ${c.join(" | ")} |`)].join("\n");
}
