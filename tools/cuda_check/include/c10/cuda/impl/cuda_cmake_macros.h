// Stand-in for the header a CUDA build of libtorch generates (CMake writes it
// next to c10/cuda/CUDAMacros.h; Debian's CPU-only libtorch-dev ships the CUDA
// headers without it). Used only to compile the CUDA frame path as a check
// on machines without a CUDA libtorch (meson.build: mirage-cuda-frame-path-check);
// a real CUDA libtorch brings its own.
#pragma once
#define C10_CUDA_BUILD_SHARED_LIBS
