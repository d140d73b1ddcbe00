// The package's version, as package.json states it (for `vlm-grpo --version`).
import fs from "node:fs";
import { fileURLToPath } from "node:url";

/** dist/src/cli/version.js -> the repository's (or installed package's) package.json. */
const PACKAGE_JSON = fileURLToPath(new URL("../../../package.json", import.meta.url));

export function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(PACKAGE_JSON, "utf8")) as { name?: string; version?: string };
  if (typeof pkg.version !== "string") throw new Error(`${PACKAGE_JSON} has no "version"`);
  return `${pkg.name ?? "vlm-grpo"} ${pkg.version}`;
}
