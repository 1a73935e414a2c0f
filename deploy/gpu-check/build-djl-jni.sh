#!/usr/bin/env bash
# build-djl-jni.sh: builds DJL 0.36.0's PyTorch JNI (libdjl_torch.so) against the libtorch a node has, so that
# DJL 0.36 runs on a libtorch other than the 2.7.1 its published JNI is linked against (2.10+ lacks symbols
# that JNI imports). DJL's sources are not part of this repository: give them with --djl-src (a folder or a
# .tar.gz holding engines/pytorch/pytorch-native, engines/pytorch/pytorch-engine/.../PyTorchLibrary.java and
# api/src/main/native of tag v0.36.0); djl-0.36.0-libtorch.patch beside this script is applied to a copy.
#
#   build-djl-jni.sh --libtorch DIR --djl-src SRC [--out FILE] [--include DIR] [--jni-include DIR]
#                    [--jni-header FILE] [--cuda auto|on|off] [--builder auto|cmake|direct] [--jobs N] [--work DIR]
#   build-djl-jni.sh --libtorch DIR --check FILE      only the symbol check (below) of a JNI built before
#
#   --libtorch DIR   the folder holding libtorch.so: torch/lib of a PyTorch wheel, lib/ of a libtorch zip, or a
#                    folder of libtorch*.so links (a distribution's libtorch); its version comes from ../version.py,
#                    ../build-version or --version
#   --include DIR    libtorch's headers (default DIR/../include)
#   --out FILE       where the JNI goes (default DIR/0.36.0-libdjl_torch.so, which DJL tries first, else, when DIR is
#                    not writable, $DJL_CACHE_DIR/pytorch/<version>-<flavor>-linux-x86_64/0.36.0-libdjl_torch.so);
#                    FILE.built-for records the libtorch it was built for (DreamCluster's Libtorch checks it)
#   --jni-include    the folder with jni.h and linux/jni_md.h (default $JAVA_HOME/include)
#   --jni-header     ai_djl_pytorch_jni_PyTorchLibrary.h made beforehand (default: javac -h, needs a JDK)
#   --builder        cmake (DJL's CMakeLists.txt), direct (g++ per file, then one link) or auto (cmake, then
#                    direct if cmake fails)
# The C++ standard is 20 where libtorch's ATen.h demands it (2.10+), else 17; _GLIBCXX_USE_CXX11_ABI is read
# from libtorch's TorchConfig.cmake, else from its symbols. After the link every c10::/at::/torch:: symbol the
# JNI imports is looked up in libtorch's libraries (the check that fails for DJL's own JNI on 2.10+).
# Exit 2 on bad input (one line naming the flag), 1 when the build fails.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
patch_file="$here/djl-0.36.0-libtorch.patch"
DJL_VERSION=0.36.0

libdir="" src="" out="" check="" inc="" jniinc="" jnihdr="" cuda=auto builder=auto jobs="$(nproc 2>/dev/null || echo 2)" work="" version=""
bad() { echo "error: $1: $2 is not allowed ($3)" >&2; exit 2; }
need() { [ $# -ge 2 ] || bad "$1" "(nothing)" "a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --libtorch) need "$@"; libdir="$2"; shift 2 ;;
    --djl-src) need "$@"; src="$2"; shift 2 ;;
    --out) need "$@"; out="$2"; shift 2 ;;
    --include) need "$@"; inc="$2"; shift 2 ;;
    --jni-include) need "$@"; jniinc="$2"; shift 2 ;;
    --jni-header) need "$@"; jnihdr="$2"; shift 2 ;;
    --cuda) need "$@"; cuda="$2"; shift 2 ;;
    --builder) need "$@"; builder="$2"; shift 2 ;;
    --jobs) need "$@"; jobs="$2"; shift 2 ;;
    --work) need "$@"; work="$2"; shift 2 ;;
    --version) need "$@"; version="$2"; shift 2 ;;
    --check) need "$@"; check="$2"; shift 2 ;;
    *) bad "argument" "$1" "--libtorch, --djl-src, --out, --include, --jni-include, --jni-header, --cuda, --builder, --jobs, --work, --version, --check" ;;
  esac
done
[ -n "$libdir" ] || bad "--libtorch" "(missing)" "the folder holding libtorch.so"
[ -f "$libdir/libtorch.so" ] || bad "--libtorch" "$libdir" "a folder holding libtorch.so"
libdir="$(cd "$libdir" && pwd)"
if [ -z "$check" ]; then
  [ -n "$src" ] || bad "--djl-src" "(missing)" "DJL v$DJL_VERSION's sources: a folder or .tar.gz with engines/pytorch/pytorch-native"
  [ -e "$src" ] || bad "--djl-src" "$src" "an existing folder or .tar.gz"
else
  [ -f "$check" ] || bad "--check" "$check" "a built libdjl_torch.so"
fi
case "$cuda" in auto|on|off) ;; *) bad "--cuda" "$cuda" "auto, on or off" ;; esac
case "$builder" in auto|cmake|direct) ;; *) bad "--builder" "$builder" "auto, cmake or direct" ;; esac
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || bad "--jobs" "$jobs" "a count >= 1"
inc="${inc:-$libdir/../include}"
[ -f "$inc/ATen/ATen.h" ] || bad "--include" "$inc" "libtorch's header folder (with ATen/ATen.h)"
inc="$(cd "$inc" && pwd)"
jniinc="${jniinc:-${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac || command -v java || echo /nonexistent/bin/java)")")")}/include}"
[ -n "$check" ] || [ -f "$jniinc/jni.h" ] && [ -f "$jniinc/linux/jni_md.h" ] || bad "--jni-include" "$jniinc" "a folder with jni.h and linux/jni_md.h"

# --- what libtorch this is
if [ -z "$version" ]; then
  if [ -f "$libdir/../version.py" ]; then
    version="$(sed -n "s/^__version__ *= *['\"]\\([^'\"]*\\)['\"].*/\\1/p" "$libdir/../version.py" | head -1)"
  elif [ -f "$libdir/../build-version" ]; then
    version="$(head -1 "$libdir/../build-version" | tr -d '[:space:]')"
  fi
fi
[ -n "$version" ] || bad "--libtorch" "$libdir" "a libtorch whose version can be read (../version.py, ../build-version) or --version"
base="${version%%+*}"
if [ "$cuda" = auto ]; then cuda=off; [ -f "$libdir/libtorch_cuda.so" ] && cuda=on; fi
flavor=cpu
if [ "$cuda" = on ]; then
  [ -f "$libdir/libtorch_cuda.so" ] || bad "--cuda" "on" "auto or off: $libdir has no libtorch_cuda.so"
  case "$version" in *+cu*) flavor="${version##*+}" ;; *) flavor=cu ;; esac
fi
libs=(c10 torch_cpu torch)
[ "$cuda" = on ] && libs+=(c10_cuda torch_cuda)
cxx=17
grep -q 'C++20 or later' "$inc/ATen/ATen.h" 2>/dev/null && cxx=20
torchcfg="$(ls "$libdir/../share/cmake/Torch/TorchConfig.cmake" "$libdir/cmake/Torch/TorchConfig.cmake" 2>/dev/null | head -1 || true)"
abi=""
[ -n "$torchcfg" ] && abi="$(grep -o '_GLIBCXX_USE_CXX11_ABI=[01]' "$torchcfg" | head -1 | cut -d= -f2 || true)"
if [ -z "$abi" ]; then
  abi=0  # (grep -c, not grep -q: under pipefail a -q that stops reading fails the pipeline)
  [ "$(nm -D --defined-only "$libdir/libc10.so" 2>/dev/null | grep -c '__cxx11' || true)" -gt 0 ] && abi=1
fi
echo "libtorch $version at $libdir: flavor $flavor, C++$cxx, _GLIBCXX_USE_CXX11_ABI=$abi, TorchConfig ${torchcfg:-none}"

# --- every libtorch symbol the JNI imports must be defined by libtorch's libraries (DJL's published JNI fails this on 2.10+)
symbol_check() { # symbol_check JNI WORKDIR
  local jni="$1" w="$2" defined="$2/defined.txt" l missing n_imp n_miss
  : > "$defined"
  for l in "${libs[@]}"; do nm -D --defined-only "$(readlink -f "$libdir/lib$l.so")" 2>/dev/null | awk '{print $3}' >> "$defined"; done
  sort -u -o "$defined" "$defined"
  nm -D --undefined-only "$jni" | awk '{print $2}' | grep -E '^_Z(T[VIS])?NK?(3c10|2at|5torch|6caffe2)' | sort -u > "$w/imported.txt" || true
  missing="$(comm -23 "$w/imported.txt" "$defined" | sed 's/@.*//' | comm -23 - "$defined" || true)"
  n_imp=$(wc -l < "$w/imported.txt"); n_miss=$(printf '%s' "$missing" | grep -c . || true)
  echo "libtorch symbols imported by $(basename "$jni"): $n_imp, missing from $libdir: $n_miss"
  if [ "$n_miss" -gt 0 ]; then
    printf '%s\n' "$missing" | head -10 | c++filt
    echo "error: the JNI imports symbols this libtorch does not define" >&2
    return 1
  fi
}

if [ -n "$check" ]; then
  w="$(mktemp -d "${TMPDIR:-/tmp}/djl-jni-check.XXXXXX")"
  symbol_check "$check" "$w"; rc=$?; rm -rf "$w"; exit $rc
fi

if [ -z "$out" ]; then
  if [ -w "$libdir" ]; then
    out="$libdir/$DJL_VERSION-libdjl_torch.so"
  else
    out="${DJL_CACHE_DIR:-$HOME/.djl.ai}/pytorch/$base-$flavor-linux-x86_64/$DJL_VERSION-libdjl_torch.so"
  fi
fi
mkdir -p "$(dirname "$out")"

# --- DJL's sources, patched, in a work folder
work="${work:-$(mktemp -d "${TMPDIR:-/tmp}/djl-jni.XXXXXX")}"
mkdir -p "$work"
rm -rf "$work/djl" && mkdir -p "$work/djl"
if [ -d "$src" ]; then
  cp -r "$src/." "$work/djl/"
else
  tar -xzf "$src" -C "$work/djl"
fi
native="$work/djl/engines/pytorch/pytorch-native"
[ -f "$native/CMakeLists.txt" ] && [ -d "$work/djl/api/src/main/native/djl" ] \
  || bad "--djl-src" "$src" "DJL v$DJL_VERSION's tree with engines/pytorch/pytorch-native and api/src/main/native"
(cd "$work/djl" && patch -s -p1 < "$patch_file") || { echo "error: $patch_file does not apply to $src (DJL v$DJL_VERSION expected)" >&2; exit 1; }
mkdir -p "$native/build/include"
if [ -n "$jnihdr" ]; then
  [ -f "$jnihdr" ] || bad "--jni-header" "$jnihdr" "an existing ai_djl_pytorch_jni_PyTorchLibrary.h"
  cp "$jnihdr" "$native/build/include/ai_djl_pytorch_jni_PyTorchLibrary.h"
else
  command -v javac >/dev/null || bad "--jni-header" "(missing)" "the header made by javac -h, since there is no javac here"
  javac -h "$native/build/include" -d "$work/classes" \
    "$work/djl/engines/pytorch/pytorch-engine/src/main/java/ai/djl/pytorch/jni/PyTorchLibrary.java"
fi

cuda_inc=()
if [ "$cuda" = on ]; then
  for d in "${CUDA_HOME:-}" /usr/local/cuda; do [ -n "$d" ] && [ -f "$d/include/cuda_runtime_api.h" ] && cuda_inc+=("$d/include"); done
  for d in "$libdir"/../../nvidia/*/include; do [ -d "$d" ] && cuda_inc+=("$(cd "$d" && pwd)"); done
fi

build_cmake() {
  command -v cmake >/dev/null || { echo "cmake: not installed"; return 1; }
  [ -n "$torchcfg" ] || { echo "cmake: no TorchConfig.cmake beside $libdir"; return 1; }
  local prefix; prefix="$(cd "$(dirname "$torchcfg")/.." && pwd)"
  local b="$native/build"
  cmake -S "$native" -B "$b" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DDJL_CXX_STANDARD="$cxx" \
    $([ "$cuda" = on ] && echo -DUSE_CUDA=1) -DJAVA_INCLUDE_PATH="$jniinc" -DJAVA_INCLUDE_PATH2="$jniinc/linux" \
    -DJAVA_AWT_INCLUDE_PATH=NotNeeded -DJAVA_AWT_LIBRARY=NotNeeded -DJAVA_JVM_LIBRARY=NotNeeded >"$work/cmake-configure.log" 2>&1 \
    || { echo "cmake: configure failed (tail of $work/cmake-configure.log:)"; tail -15 "$work/cmake-configure.log"; return 1; }
  cmake --build "$b" -- -j "$jobs" >"$work/cmake-build.log" 2>&1 \
    || { echo "cmake: build failed (tail of $work/cmake-build.log:)"; grep -E 'error|Error' "$work/cmake-build.log" | head -20; return 1; }
  cp "$b/libdjl_torch.so" "$work/libdjl_torch.so"
}

build_direct() {
  local o="$work/obj"; rm -rf "$o"; mkdir -p "$o"
  local flags=(-O2 -fPIC -std=c++"$cxx" -D_GLIBCXX_USE_CXX11_ABI="$abi" -I"$native/build/include" -I"$work/djl/api/src/main/native"
    -I"$inc" -I"$inc/torch/csrc/api/include" -I"$jniinc" -I"$jniinc/linux")
  [ "$cuda" = on ] && flags+=(-DUSE_CUDA) && for d in "${cuda_inc[@]}"; do flags+=(-I"$d"); done
  printf '%s\n' "$native"/src/main/native/*.cc | xargs -P "$jobs" -I{} sh -c \
    'f="$1"; shift; g++ "$@" -c "$f" -o "'"$o"'/$(basename "$f" .cc).o" 2>"'"$o"'/$(basename "$f" .cc).log" || { echo "direct: $(basename "$f") failed:"; grep -m5 error "'"$o"'/$(basename "$f" .cc).log"; exit 1; }' \
    _ {} "${flags[@]}" || return 1
  g++ -shared -o "$work/libdjl_torch.so" "$o"/*.o -L"$libdir" $(printf -- '-l%s ' "${libs[@]}") '-Wl,-rpath,$ORIGIN' \
    >"$o/link.log" 2>&1 || { echo "direct: link failed:"; head -20 "$o/link.log"; return 1; }
}

t0=$(date +%s)
case "$builder" in
  cmake) build_cmake || exit 1 ;;
  direct) build_direct || exit 1 ;;
  auto) build_cmake || { echo "falling back to the direct build"; build_direct || exit 1; } ;;
esac
echo "built in $(( $(date +%s) - t0 )) s: $(du -b "$work/libdjl_torch.so" | cut -f1) bytes"

symbol_check "$work/libdjl_torch.so" "$work" || exit 1
cp "$work/libdjl_torch.so" "$out.tmp" && mv "$out.tmp" "$out"
cpu_size=$(stat -Lc %s "$libdir/libtorch_cpu.so")
printf 'version=%s\nflavor=%s\nlibtorch_cpu.so=%s\ncxx=%s\nabi=%s\ndjl=%s\npatch_sha256=%s\n' "$version" "$flavor" "$cpu_size" "$cxx" "$abi" \
  "$DJL_VERSION" "$(sha256sum "$patch_file" | cut -d' ' -f1)" > "$out.built-for"
echo "installed $out (+ .built-for)"
echo "PYTORCH_LIBRARY_PATH=$libdir PYTORCH_VERSION=$base PYTORCH_FLAVOR=$flavor"
