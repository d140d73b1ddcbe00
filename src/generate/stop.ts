// Stop strings: a completion ends once its decoded text contains one of them.
// The text is kept up to and including the stop string (as Hugging Face's
// stop_strings do: the matched string stays part of the output).

export class StopStringMatcher {
  private readonly stops: string[];
  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
    if (this.stops.length !== stops.length) throw new Error("stopStrings: empty strings are not allowed");
  }
  /** The end offset of the earliest-ending stop string in `text`, or null. */
  firstMatchEnd(text: string): number | null {
    let best: number | null = null;
    for (const s of this.stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (best === null || i + s.length < best)) best = i + s.length;
    }
    return best;
  }
}
