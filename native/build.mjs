// Builds the libtorch addon: native/src/*.cpp -> native/build/vlm_torch.node.
// Run by `npm ci` (the package's install script) and `npm run build:native`.
// VLM_NATIVE_BUILD=<folder> builds into another folder (default native/build),
// so a second libtorch (e.g. pip's 2.x: LIBTORCH_USE_PYTORCH=1) can sit beside
// the default build; src/torch/native.ts loads from the same variable.
// Incremental (an object is rebuilt when its source or a header is newer),
// parallel over the available cores, and atomic (outputs are renamed into place).
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { findLibtorch, INSTALL_HINT } from "./find-libtorch.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const srcDir = path.join(here, "src");
// Relative paths are taken from the project root, as src/torch/native.ts does.
const buildDir = path.resolve(here, "..", process.env.VLM_NATIVE_BUILD || "native/build");
const objDir = path.join(buildDir, "obj");
const output = path.join(buildDir, "vlm_torch.node");

function resolvePackageDir(name) {
  const dir = path.join(here, "..", "node_modules", name);
  if (!fs.existsSync(dir)) throw new Error(`native build: ${name} is missing; run 'npm ci' first`);
  return dir;
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "inherit", "inherit"] });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}`))));
  });
}

async function pool(tasks, width) {
  const queue = [...tasks];
  const workers = Array.from({ length: Math.max(1, width) }, async () => {
    while (queue.length) await queue.shift()();
  });
  await Promise.all(workers);
}

async function main() {
  let lt;
  try {
    lt = findLibtorch();
  } catch (e) {
    console.error(`vlm-grpo: ${e.message}\n${INSTALL_HINT}`);
    process.exit(1);
  }
  if (!lt) {
    console.error(`vlm-grpo: no libtorch found.\n${INSTALL_HINT}`);
    process.exit(1);
  }
  if (lt.glooMissingHeaders) {
    console.warn("vlm-grpo: Gloo headers missing (Debian: apt-get install libgloo-dev); building without c10d/Gloo");
  }
  const cxx = process.env.CXX || "g++";
  const defines = [
    `-D_GLIBCXX_USE_CXX11_ABI=${lt.cxx11Abi ? 1 : 0}`,
    "-DNAPI_VERSION=8",
    "-DNAPI_CPP_EXCEPTIONS",
    "-DNODE_ADDON_API_DISABLE_DEPRECATED",
    ...(lt.gloo ? ["-DVLM_WITH_GLOO", "-DUSE_C10D_GLOO"] : []),
    ...(lt.cuda ? ["-DVLM_WITH_CUDA"] : []),
    ...(lt.nccl ? ["-DVLM_WITH_NCCL", "-DUSE_C10D_NCCL"] : []),
  ];
  const includes = [
    resolvePackageDir("node-api-headers") + "/include",
    resolvePackageDir("node-addon-api"),
    ...lt.includeDirs,
    ...(lt.nccl && lt.cudaInclude ? [lt.cudaInclude] : []),
  ].map((d) => `-I${d}`);
  const cflags = [`-std=${lt.cxxStd}`, "-O2", "-fPIC", "-fvisibility=hidden", "-Wno-deprecated-declarations", "-Wno-unused-parameter", ...defines, ...includes];
  fs.mkdirSync(objDir, { recursive: true });
  const flagsKey = JSON.stringify({ cxx, cflags });
  const flagsFile = path.join(objDir, "flags.json");
  const flagsChanged = !fs.existsSync(flagsFile) || fs.readFileSync(flagsFile, "utf8") !== flagsKey;

  const sources = fs.readdirSync(srcDir).filter((f) => f.endsWith(".cpp")).sort();
  const headers = fs.readdirSync(srcDir).filter((f) => f.endsWith(".h"));
  const newestHeader = Math.max(0, ...headers.map((h) => fs.statSync(path.join(srcDir, h)).mtimeMs));
  const objects = [];
  const tasks = [];
  for (const src of sources) {
    const srcPath = path.join(srcDir, src);
    const obj = path.join(objDir, src.replace(/\.cpp$/, ".o"));
    objects.push(obj);
    const stale = flagsChanged || !fs.existsSync(obj) ||
      fs.statSync(obj).mtimeMs < Math.max(fs.statSync(srcPath).mtimeMs, newestHeader);
    if (!stale) continue;
    tasks.push(async () => {
      const t0 = Date.now();
      const tmp = `${obj}.${process.pid}.tmp`;
      await run(cxx, [...cflags, "-c", srcPath, "-o", tmp]);
      fs.renameSync(tmp, obj);
      console.log(`  compiled ${src} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    });
  }
  const jobs = Number(process.env.VLM_BUILD_JOBS) || os.availableParallelism?.() || os.cpus().length;
  if (tasks.length) console.log(`vlm-grpo: building the native addon against ${lt.how} (${tasks.length} file(s), ${jobs} jobs)`);
  await pool(tasks, jobs);
  fs.writeFileSync(flagsFile, flagsKey);

  const needLink = tasks.length > 0 || !fs.existsSync(output);
  if (needLink) {
    const libs = ["-ltorch", "-ltorch_cpu", "-lc10", ...(lt.cuda ? ["-ltorch_cuda", "-lc10_cuda"] : [])];
    const ldflags = [
      "-shared",
      ...lt.libDirs.flatMap((d) => [`-L${d}`, `-Wl,-rpath,${d}`]),
      // Without --no-as-needed the linker drops libtorch_cuda (nothing refers
      // to it by symbol) and CUDA silently reports unavailable.
      "-Wl,--no-as-needed", ...libs, "-Wl,--as-needed",
    ];
    const tmp = `${output}.${process.pid}.tmp`;
    await run(cxx, [...objects, "-o", tmp, ...ldflags]);
    fs.renameSync(tmp, output);
    const info = { libtorch: lt.how, version: lt.version?.join("."), cxxStd: lt.cxxStd, includeDirs: lt.includeDirs, libDirs: lt.libDirs, cxx11Abi: lt.cxx11Abi, cuda: lt.cuda, gloo: lt.gloo, nccl: lt.nccl };
    fs.writeFileSync(path.join(buildDir, "build-info.json"), JSON.stringify(info, null, 2) + "\n");
    console.log(`vlm-grpo: native addon ready: ${path.relative(process.cwd(), output)}`);
  }
}

main().catch((e) => {
  console.error(`vlm-grpo: native build failed: ${e.message}`);
  process.exit(1);
});
