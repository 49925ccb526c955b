// cuda_emulation.h: the device side of the CUDA emulator. Force-included (g++ -include) before a generated
// network source so that its kernels, written in CUDA C++, compile as ordinary C++ and run on the CPU under
// the scheduler in emulated_driver.cpp: one block at a time, each CUDA thread a fiber that yields at
// __syncthreads and at warp collectives (shuffles, mma). Only what the AlexNetCompiler prelude uses is here.
#pragma once

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <algorithm>
#include <type_traits>
#include <utility>

// The prelude replaces its inline-PTX helpers (to_tf32, mma_m16n8k8_tf32) with the ones below.
#define ALEXNET_EMULATED_DEVICE 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// One block runs at a time, so a function-local static is exactly one block's shared memory.
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct alignas(16) float4
{
    float x, y, z, w;
};

struct emu_dim3
{
    unsigned x, y, z;
};

namespace emu
{
// Set by the scheduler before it resumes a fiber.
extern emu_dim3 thread_idx, block_idx, block_dim, grid_dim;

void sync_block();
float shfl_xor(unsigned mask, float value, int lane_mask);
void mma_m16n8k8_tf32(float* d, unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0, unsigned b1);
} // namespace emu

#define threadIdx (::emu::thread_idx)
#define blockIdx (::emu::block_idx)
#define blockDim (::emu::block_dim)
#define gridDim (::emu::grid_dim)

inline void __syncthreads() { ::emu::sync_block(); }
inline float __shfl_xor_sync(unsigned mask, float value, int lane_mask) { return ::emu::shfl_xor(mask, value, lane_mask); }

// Blocks and their threads never run at the same time as each other, so read-modify-write is atomic.
template <class T>
inline T atomicAdd(T* address, T value)
{
    T old = *address;
    *address = old + value;
    return old;
}

// The CUDA reinterpretation intrinsics, as the copy of one value's bits into another type.
template <class To, class From>
inline To emu_bit_cast(From value)
{
    static_assert(sizeof(To) == sizeof(From), "same size");
    To result;
    memcpy(&result, &value, sizeof result);
    return result;
}
inline float __int_as_float(int bits) { return emu_bit_cast<float>(bits); }
inline int __float_as_int(float value) { return emu_bit_cast<int>(value); }
inline unsigned __float_as_uint(float value) { return emu_bit_cast<unsigned>(value); }
inline float __uint_as_float(unsigned bits) { return emu_bit_cast<float>(bits); }

// The fast division intrinsic (within 2 ulp on the GPU), as the exact division: the checks' tolerances cover both.
inline float __fdividef(float x, float y) { return x / y; }

using std::max;
using std::min;

// cvt.rna.tf32.f32 (PTX ISA): round to the nearest TF32 value (10 explicit mantissa bits), ties away from
// zero; the result is a 32-bit register whose low 13 bits are zero. Adding half an ulp of TF32 to the
// magnitude bits and truncating rounds ties away from zero, because the sign is kept apart.
// Built with EMU_TF32_EXACT, both keep all 23 mantissa bits: the tensor-core data path (fragment layouts,
// tile walk) must then agree with FP32 to FP32 tolerances, which separates indexing faults from rounding.
inline unsigned to_tf32(float x)
{
    unsigned bits = __float_as_uint(x);
#ifdef EMU_TF32_EXACT
    return bits;
#endif
    if ((bits & 0x7f800000u) == 0x7f800000u) return bits; // infinity and NaN pass through
    return (bits + 0x1000u) & 0xffffe000u;
}

inline void mma_m16n8k8_tf32(float* d, unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0, unsigned b1)
{
    ::emu::mma_m16n8k8_tf32(d, a0, a1, a2, a3, b0, b1);
}

namespace emu
{
// A kernel launched through the emulated driver: its name, a function that unpacks cuLaunchKernel's
// parameter array into the kernel's own parameter types and calls it, and one that checks, before any
// thread runs, that every pointer argument is null or points into a device allocation.
struct KernelRegistration
{
    const char* name;
    const char* gemm_tile; // "BMxBN" the kernel was compiled with (EMU_GEMM_TILE), or "" when it has no GEMM tile
    void (*entry)(void** parameters);
    bool (*check)(void** parameters, char* error, size_t error_size);
    KernelRegistration* next;
    KernelRegistration(const char* kernel_name, const char* tile, void (*kernel_entry)(void**), bool (*kernel_check)(void**, char*, size_t));
};

bool is_device_pointer(const void* pointer);

template <class... Args, size_t... I>
inline void invoke_with(void (*kernel)(Args...), void** parameters, std::index_sequence<I...>)
{
    kernel(*static_cast<std::remove_reference_t<Args>*>(parameters[I])...);
}

template <class... Args>
inline void invoke(void (*kernel)(Args...), void** parameters)
{
    invoke_with(kernel, parameters, std::index_sequence_for<Args...>{});
}

template <class T>
inline bool check_argument(void* slot, int index, const char* kernel, char* error, size_t error_size)
{
    if constexpr (std::is_pointer_v<T>)
    {
        const void* value = *static_cast<T*>(slot);
        if (value != nullptr && !is_device_pointer(value))
        {
            snprintf(error, error_size, "argument %d of kernel '%s' is %p, which is not in any device allocation", index, kernel, value);
            return false;
        }
    }
    return true;
}

template <class... Args, size_t... I>
inline bool check_with(void (*)(Args...), void** parameters, const char* kernel, char* error, size_t error_size, std::index_sequence<I...>)
{
    return (check_argument<std::remove_cv_t<Args>>(parameters[I], (int)I, kernel, error, error_size) && ...);
}

template <class... Args>
inline bool check(void (*kernel)(Args...), void** parameters, const char* name, char* error, size_t error_size)
{
    return check_with(kernel, parameters, name, error, error_size, std::index_sequence_for<Args...>{});
}
} // namespace emu

// One line per kernel in the generated registration file, with the kernel's parameter types (a device
// template may share the kernel's name, so the type picks the extern "C" function out of the overload set):
//   EMU_KERNEL(conv1_forward, (const float*, const float*, const float*, float*, int))
// A library may hold one network compiled for several GEMM tiles: each tile's translation unit defines
// EMU_GEMM_TILE ("128x64"), renames the kernels with macros and includes the source inside an unnamed namespace,
// so the tiles' same-named kernels and template instantiations stay apart; modules pick kernels by their tile.
#ifndef EMU_GEMM_TILE
#define EMU_GEMM_TILE ""
#endif
#define EMU_KERNEL(name, parameter_types)                                                                     \
    static ::emu::KernelRegistration emu_registration_##name(                                                \
        #name, EMU_GEMM_TILE, [](void** p) { ::emu::invoke(static_cast<void(*) parameter_types>(name), p); }, \
        [](void** p, char* error, size_t size) {                                                             \
            return ::emu::check(static_cast<void(*) parameter_types>(name), p, #name, error, size);          \
        });
