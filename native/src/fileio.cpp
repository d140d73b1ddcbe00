// Raw file I/O straight into and out of tensor storage, so that loading a
// checkpoint copies each tensor's bytes once (file -> tensor), with no JS
// buffer in between. Header parsing and validation live in TypeScript.
#include "common.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace vlm {
namespace {

std::string Errno() { return std::strerror(errno); }

// readIntoTensor(path, byteOffset, dtypeCode, shape[]) -> handle
Napi::Value ReadIntoTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "readIntoTensor", {
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "readIntoTensor: path must be a string");
    std::string path = info[0].As<Napi::String>().Utf8Value();
    int64_t offset = ToInt64(env, info[1], "readIntoTensor: offset");
    at::ScalarType dtype = ToScalarType(env, info[2], "readIntoTensor: dtype");
    std::vector<int64_t> shape = ToIntVector(env, info[3], "readIntoTensor: shape");
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
    size_t nbytes = t.nbytes();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Napi::Error::New(env, "readIntoTensor: cannot open " + path + ": " + Errno());
    auto* dst = static_cast<char*>(t.data_ptr());
    size_t done = 0;
    while (done < nbytes) {
      ssize_t n = ::pread(fd, dst + done, nbytes - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::string why = n < 0 ? Errno() : "unexpected end of file";
        ::close(fd);
        throw Napi::Error::New(env, "readIntoTensor: " + path + ": reading " + std::to_string(nbytes) +
                                        " bytes at offset " + std::to_string(offset) + ": " + why);
      }
      done += static_cast<size_t>(n);
    }
    ::close(fd);
    return WrapTensor(env, std::move(t));
  })
}

// writeTensor(fd, handle) -> bytes written. Writes the tensor's elements
// (contiguous, CPU, native little-endian) at the fd's current position.
Napi::Value WriteTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLM_PROTECT(env, "writeTensor", {
    int fd = static_cast<int>(ToInt64(env, info[0], "writeTensor: fd"));
    const at::Tensor& src = GetTensor(env, info[1], "writeTensor: tensor");
    at::Tensor t = src.detach().to(at::kCPU).contiguous();
    const auto* p = static_cast<const char*>(t.data_ptr());
    size_t nbytes = t.nbytes(), done = 0;
    while (done < nbytes) {
      ssize_t n = ::write(fd, p + done, nbytes - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Napi::Error::New(env, "writeTensor: write failed: " + Errno());
      done += static_cast<size_t>(n);
    }
    return Napi::Number::New(env, static_cast<double>(nbytes));
  })
}

}  // namespace

void RegisterFileIO(Napi::Env env, Napi::Object exports) {
  exports.Set("readIntoTensor", Napi::Function::New(env, ReadIntoTensor, "readIntoTensor"));
  exports.Set("writeTensor", Napi::Function::New(env, WriteTensor, "writeTensor"));
}

}  // namespace vlm
