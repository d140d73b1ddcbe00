// Finds the libtorch to build against, in the order tch-rs uses:
//   1. LIBTORCH=/path (a folder with include/ and lib/),
//   2. LIBTORCH_USE_PYTORCH=1: the `torch` package of $PYTHON (or python3),
//   3. the system's (Debian/Ubuntu libtorch-dev, headers in /usr/include/torch).
// Returns null when none is found. Also reports the C++ ABI, CUDA and the
// optional c10d back-ends (Gloo, NCCL) whose headers are present.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const exists = (p) => { try { fs.accessSync(p); return true; } catch { return false; } };

/** Reads whether a libc10 was built with the C++11 ABI (std::__cxx11 symbols). */
function detectCxx11Abi(libDir) {
  const forced = process.env.LIBTORCH_CXX11_ABI;
  if (forced === "0" || forced === "1") return forced === "1";
  for (const name of ["libc10.so", "libc10.dylib"]) {
    const file = path.join(libDir, name);
    if (!exists(file)) continue;
    const bytes = fs.readFileSync(file);
    return bytes.indexOf("St7__cxx11") >= 0 || bytes.indexOf("__cxx1112basic_string") >= 0;
  }
  return true;
}

function fromFolder(root, how) {
  const include = path.join(root, "include");
  const lib = path.join(root, "lib");
  if (!exists(path.join(include, "ATen", "ATen.h"))) {
    throw new Error(`${how}: ${root} has no include/ATen/ATen.h; expected a libtorch folder with include/ and lib/`);
  }
  return {
    how,
    includeDirs: [include, path.join(include, "torch", "csrc", "api", "include")],
    libDirs: [lib],
    cxx11Abi: detectCxx11Abi(lib),
  };
}

function fromPython() {
  const python = process.env.PYTHON || "python3";
  const script = [
    "import json, torch",
    "from torch.utils import cpp_extension as c",
    "print(json.dumps({'include': c.include_paths(), 'lib': c.library_paths(),",
    " 'abi': bool(torch._C._GLIBCXX_USE_CXX11_ABI), 'cuda': torch.version.cuda, 'version': torch.__version__}))",
  ].join("\n");
  let out;
  try {
    out = execFileSync(python, ["-c", script], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    throw new Error(`LIBTORCH_USE_PYTORCH=1 but '${python} -c "import torch"' failed: ${String(e.stderr || e.message).trim().split("\n").pop()}`);
  }
  const info = JSON.parse(out.trim().split("\n").pop());
  return { how: `python torch ${info.version} (${python})`, includeDirs: info.include, libDirs: info.lib, cxx11Abi: info.abi };
}

function fromSystem() {
  if (!exists("/usr/include/torch/csrc/api/include/torch/version.h") && !exists("/usr/include/ATen/ATen.h")) return null;
  const multiarch = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"];
  const libDir = multiarch.find((d) => exists(path.join(d, "libtorch.so")));
  if (!libDir) return null;
  return {
    how: "system libtorch (libtorch-dev)",
    includeDirs: ["/usr/include", "/usr/include/torch/csrc/api/include"],
    libDirs: [libDir],
    cxx11Abi: detectCxx11Abi(libDir),
  };
}

/** [major, minor] from torch/version.h among the include folders, or null. */
function headerVersion(includeDirs) {
  for (const d of includeDirs) {
    for (const rel of ["torch/headeronly/version.h", "torch/version.h", "torch/csrc/api/include/torch/version.h"]) {
      const file = path.join(d, rel);
      if (!exists(file)) continue;
      const text = fs.readFileSync(file, "utf8");
      const major = /#define TORCH_VERSION_MAJOR (\d+)/.exec(text);
      const minor = /#define TORCH_VERSION_MINOR (\d+)/.exec(text);
      if (major && minor) return [Number(major[1]), Number(minor[1])];
    }
  }
  return null;
}

export function findLibtorch() {
  let found = null;
  if (process.env.LIBTORCH) found = fromFolder(process.env.LIBTORCH, `LIBTORCH=${process.env.LIBTORCH}`);
  else if (process.env.LIBTORCH_USE_PYTORCH === "1") found = fromPython();
  else found = fromSystem();
  if (!found) return null;
  const findHeader = (rel) => found.includeDirs.some((d) => exists(path.join(d, rel)));
  const libDir = found.libDirs[0];
  found.cuda = exists(path.join(libDir, "libtorch_cuda.so"));
  found.version = headerVersion(found.includeDirs);
  // ATen's headers need C++20 from libtorch 2.12 on (PyTorch's own
  // cpp_extension switched to -std=c++20 then); older ones build as C++17.
  const [maj, min] = found.version ?? [0, 0];
  found.cxxStd = maj > 2 || (maj === 2 && min >= 12) ? "c++20" : "c++17";
  const c10dGloo = findHeader("torch/csrc/distributed/c10d/ProcessGroupGloo.hpp");
  // Gloo's own headers ship with Python wheels; on Debian they come from libgloo-dev.
  const glooHeaders = findHeader("gloo/algorithm.h") || exists("/usr/include/gloo/algorithm.h");
  found.gloo = c10dGloo && glooHeaders;
  found.glooMissingHeaders = c10dGloo && !glooHeaders;
  const cudaHome = process.env.CUDA_HOME || "/usr/local/cuda";
  found.cudaInclude = exists(path.join(cudaHome, "include", "cuda_runtime_api.h")) ? path.join(cudaHome, "include") : null;
  found.nccl = found.cuda && findHeader("torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp") && !!found.cudaInclude &&
    (exists(path.join(found.cudaInclude, "nccl.h")) || findHeader("nccl.h") || exists("/usr/include/nccl.h"));
  return found;
}

export const INSTALL_HINT = [
  "vlm-grpo needs libtorch (the C++ library of PyTorch) to build its native addon.",
  "  Debian/Ubuntu:  sudo apt-get install -y libtorch-dev libopenblas0-pthread libgloo-dev",
  "  Any system:     LIBTORCH=/path/to/libtorch npm ci        (a folder with include/ and lib/)",
  "  CUDA / pip:     LIBTORCH_USE_PYTORCH=1 npm ci            (uses the torch package of $PYTHON or python3)",
].join("\n");
