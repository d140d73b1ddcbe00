// A small RFC 4180 CSV parser: comma-separated fields, records ended by CRLF
// or LF (a lone CR too), fields in double quotes may hold commas, quotes
// (doubled: "") and line breaks. Lenient where the RFC is silent: a quote
// inside an unquoted field is kept literally, blank lines are skipped, a
// UTF-8 byte-order mark is dropped. A record that breaks the quoting rules is
// reported with the line it starts on and skipped; parsing resumes at the
// next line so one bad record does not hide the rest.

/** One record and the 1-based line it starts on. */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/** A record the parser could not read. */
export interface CsvError {
  line: number;
  message: string;
}

export interface CsvParseResult {
  records: CsvRecord[];
  errors: CsvError[];
}

/** Parses CSV text into records (the header, if any, is simply the first record). */
export function parseCsv(text: string): CsvParseResult {
  const records: CsvRecord[] = [];
  const errors: CsvError[] = [];
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;

  const isEol = (c: string | undefined) => c === "\n" || c === "\r";
  /** Moves past one line break at i (CRLF counts as one); returns true if there was one. */
  const eatEol = (): boolean => {
    if (text[i] === "\r") {
      i += text[i + 1] === "\n" ? 2 : 1;
    } else if (text[i] === "\n") {
      i += 1;
    } else {
      return false;
    }
    line++;
    return true;
  };
  /** Recovery: drop the rest of the current line. */
  const skipLine = () => {
    while (i < n && !isEol(text[i])) i++;
    eatEol();
  };

  while (i < n) {
    const startLine = line;
    if (eatEol()) continue; // blank line
    const fields: string[] = [];
    let bad: string | undefined;
    for (;;) {
      // one field starting at i
      if (text[i] === '"') {
        i++;
        let value = "";
        let closed = false;
        while (i < n) {
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              value += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (c === "\r" || c === "\n") {
            value += c === "\r" && text[i + 1] === "\n" ? "\r\n" : c;
            eatEol();
            continue;
          }
          value += c;
          i++;
        }
        if (!closed) {
          bad = "unterminated quoted field (a '\"' opened here is never closed)";
          break;
        }
        fields.push(value);
        if (i < n && text[i] !== "," && !isEol(text[i])) {
          bad = `unexpected character '${text[i]}' after a closing quote (a quote inside a quoted field must be doubled: "")`;
          break;
        }
      } else {
        let j = i;
        while (j < n && text[j] !== "," && !isEol(text[j])) j++;
        fields.push(text.slice(i, j));
        i = j;
      }
      if (i < n && text[i] === ",") {
        i++;
        continue;
      }
      eatEol();
      break;
    }
    if (bad !== undefined) {
      errors.push({ line: startLine, message: bad });
      skipLine();
      continue;
    }
    records.push({ fields, line: startLine });
  }
  return { records, errors };
}
