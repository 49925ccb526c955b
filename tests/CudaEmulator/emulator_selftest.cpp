// emulator_selftest.cpp: kernels and a driver-API program that check the CUDA emulator itself: that what it
// promises to catch is caught (a write past the end of a buffer, a barrier only some threads reach, a barrier
// only later blocks reach, a host pointer passed as a kernel argument, a kernel the module does not contain, a
// race showing as a difference between the two thread orders) and that what it emulates
// behaves as CUDA specifies (__syncthreads, __shfl_xor_sync, cvt.rna.tf32.f32 rounding, the mma.m16n8k8
// fragment layout). Built with emulated_driver.cpp and cuda_emulation.h; prints one line per check,
// "PASS name" or "FAIL name: why", and exits non-zero when any check fails.
#include <stdio.h>
#include <stdlib.h>

#include <string>
#include <vector>

// ---- Kernels (CUDA C++, compiled by g++ through cuda_emulation.h) ----------------------------------------
extern "C" __global__ void write_index(float* out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    out[i] = (float)i; // no bounds check on purpose: the launch covers one more block than the buffer
}

extern "C" __global__ void barrier_in_branch(float* out)
{
    if (threadIdx.x < 128) __syncthreads(); // half the block never reaches it
    out[threadIdx.x] = 1.0f;
}

// Each thread writes one slot of shared memory, then reads the mirrored one: correct only if the barrier
// holds every thread until all have written.
extern "C" __global__ void reverse_through_shared(const float* in, float* out)
{
    __shared__ float tile[256];
    tile[threadIdx.x] = in[blockIdx.x * 256 + threadIdx.x];
    __syncthreads();
    out[blockIdx.x * 256 + threadIdx.x] = tile[255 - threadIdx.x];
}

// A race: each thread publishes its index in shared memory and reads its neighbour's slot with no barrier in
// between, so what it reads depends on whether the neighbour has run yet.
extern "C" __global__ void read_neighbour_without_barrier(float* out)
{
    __shared__ float slot[257];
    slot[threadIdx.x] = (float)threadIdx.x;
    out[threadIdx.x] = slot[threadIdx.x + 1];
    __syncthreads(); // a barrier later on does not make the read above safe
}

// The first block never reaches a barrier, later ones do.
extern "C" __global__ void barrier_after_first_block(float* out)
{
    if (blockIdx.x > 0) __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = 1.0f;
}

// Butterfly sum over each warp: every lane ends with the warp's total.
extern "C" __global__ void warp_sum(const float* in, float* out)
{
    float v = in[threadIdx.x];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    out[threadIdx.x] = v;
}

extern "C" __global__ void round_to_tf32(const float* in, unsigned* out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = to_tf32(in[i]);
}

// One warp: D[16x8] = A[16x8] * B[8x8] + C, A row-major, B given as [k][n], fragments loaded as the PTX ISA
// lays them out for mma.m16n8k8 .tf32.
extern "C" __global__ void mma_16x8x8(const float* a, const float* b, const float* c, float* d)
{
    int lane = threadIdx.x, g = lane >> 2, q = lane & 3;
    float acc[4] = {c[g * 8 + 2 * q], c[g * 8 + 2 * q + 1], c[(g + 8) * 8 + 2 * q], c[(g + 8) * 8 + 2 * q + 1]};
    mma_m16n8k8_tf32(acc, to_tf32(a[g * 8 + q]), to_tf32(a[(g + 8) * 8 + q]), to_tf32(a[g * 8 + q + 4]),
                     to_tf32(a[(g + 8) * 8 + q + 4]), to_tf32(b[q * 8 + g]), to_tf32(b[(q + 4) * 8 + g]));
    d[g * 8 + 2 * q] = acc[0];
    d[g * 8 + 2 * q + 1] = acc[1];
    d[(g + 8) * 8 + 2 * q] = acc[2];
    d[(g + 8) * 8 + 2 * q + 1] = acc[3];
}

EMU_KERNEL(write_index, (float*))
EMU_KERNEL(read_neighbour_without_barrier, (float*))
EMU_KERNEL(barrier_after_first_block, (float*))
EMU_KERNEL(barrier_in_branch, (float*))
EMU_KERNEL(reverse_through_shared, (const float*, float*))
EMU_KERNEL(warp_sum, (const float*, float*))
EMU_KERNEL(round_to_tf32, (const float*, unsigned*, int))
EMU_KERNEL(mma_16x8x8, (const float*, const float*, const float*, float*))

// ---- The driver API, as the runtime binds it --------------------------------------------------------------
extern "C" int cuInit(unsigned);
extern "C" int cuGetErrorString(int, const char**);
extern "C" int cuMemAlloc_v2(unsigned long long*, size_t);
extern "C" int cuMemFree_v2(unsigned long long);
extern "C" int cuMemcpyHtoD_v2(unsigned long long, const void*, size_t);
extern "C" int cuMemcpyDtoH_v2(void*, unsigned long long, size_t);
extern "C" int cuModuleLoadData(void**, const void*);
extern "C" int cuModuleGetFunction(void**, void*, const char*);
extern "C" int cuLaunchKernel(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*, void**, void**);

static int failures = 0;

static void report(bool ok, const char* name, const std::string& why)
{
    if (ok) printf("PASS %s\n", name);
    else
    {
        printf("FAIL %s: %s\n", name, why.c_str());
        ++failures;
    }
}

static std::string message(int code)
{
    const char* text = nullptr;
    cuGetErrorString(code, &text);
    return std::to_string(code) + " " + (text ? text : "?");
}

// A launch that must fail with `code` and a message containing `expected`.
static void expect_failure(const char* name, int result, int code, const char* expected)
{
    std::string text = message(result);
    report(result == code && text.find(expected) != std::string::npos, name, "got " + text);
}

static unsigned long long device_floats(const std::vector<float>& host)
{
    unsigned long long p = 0;
    cuMemAlloc_v2(&p, host.size() * 4);
    cuMemcpyHtoD_v2(p, host.data(), host.size() * 4);
    return p;
}

static std::vector<float> host_floats(unsigned long long p, size_t n)
{
    std::vector<float> out(n);
    cuMemcpyDtoH_v2(out.data(), p, n * 4);
    return out;
}

static float bits_to_float(unsigned bits)
{
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int main()
{
    cuInit(0);
    // What NVRTC would hand over: PTX naming the kernels (the emulator checks the names against the image).
    const char* ptx = ".version 7.8\n.target sm_80\n.address_size 64\n"
                      ".visible .entry write_index(\n.visible .entry barrier_in_branch(\n"
                      ".visible .entry reverse_through_shared(\n.visible .entry warp_sum(\n"
                      ".visible .entry round_to_tf32(\n.visible .entry mma_16x8x8(\n"
                      ".visible .entry read_neighbour_without_barrier(\n.visible .entry barrier_after_first_block(\n";
    void* module = nullptr;
    report(cuModuleLoadData(&module, ptx) == 0, "module loads", message(1));
    auto kernel = [&](const char* name) {
        void* f = nullptr;
        int r = cuModuleGetFunction(&f, module, name);
        if (r != 0) report(false, name, message(r));
        return f;
    };

    // A kernel the image does not contain.
    void* missing = nullptr;
    expect_failure("missing kernel is reported", cuModuleGetFunction(&missing, module, "not_in_module"), 500, "no kernel named 'not_in_module'");

    // Writing one block past a 256-float buffer faults at the first element past the end.
    {
        unsigned long long out = device_floats(std::vector<float>(256, 0.0f));
        void* args[] = {&out};
        int r = cuLaunchKernel(kernel("write_index"), 2, 1, 1, 256, 1, 1, 0, nullptr, args, nullptr);
        expect_failure("write past the end is caught", r, 700, "0 bytes past the end of the 1024-byte allocation");
        std::string text = message(r);
        report(text.find("kernel 'write_index', block (1, 0, 0), thread (0, 0, 0)") != std::string::npos,
               "the fault names kernel, block and thread", text);
        cuMemFree_v2(out);
    }

    // A host pointer as a kernel argument.
    {
        std::vector<float> host(256);
        float* host_pointer = host.data();
        void* args[] = {&host_pointer};
        expect_failure("host pointer argument is rejected", cuLaunchKernel(kernel("write_index"), 1, 1, 1, 256, 1, 1, 0, nullptr, args, nullptr),
                       1, "argument 0 of kernel 'write_index'");
    }

    // A barrier half the block cannot reach.
    {
        unsigned long long out = device_floats(std::vector<float>(256, 0.0f));
        void* args[] = {&out};
        expect_failure("divergent __syncthreads is reported", cuLaunchKernel(kernel("barrier_in_branch"), 1, 1, 1, 256, 1, 1, 0, nullptr, args, nullptr),
                       719, "128 of 256 wait at __syncthreads (first: thread 0), 128 have exited (first: thread 128)");
        cuMemFree_v2(out);
    }

    // A kernel whose blocks differ in reaching barriers cannot be run without fibers: a clear error, not a hang.
    {
        unsigned long long out = device_floats(std::vector<float>(512, 0.0f));
        void* args[] = {&out};
        expect_failure("a barrier only in later blocks is reported", cuLaunchKernel(kernel("barrier_after_first_block"), 2, 1, 1, 256, 1, 1, 0, nullptr, args, nullptr),
                       719, "block (1, 0, 0), thread (0, 0, 0): reached __syncthreads or a warp collective in a block run without fibers");
        cuMemFree_v2(out);
    }

    // The race shows as a difference between the two thread orders; a race-free kernel gives the same either way.
    {
        std::vector<float> in(512);
        for (int i = 0; i < 512; ++i) in[i] = (float)i;
        unsigned long long d_in = device_floats(in), d_out = device_floats(std::vector<float>(512, 0.0f));
        auto run = [&](const char* order, const char* name) {
            setenv("ALEXNET_EMULATOR_THREAD_ORDER", order, 1);
            cuInit(0);
            cuMemcpyHtoD_v2(d_out, std::vector<float>(512, 0.0f).data(), 512 * 4);
            void* racy_args[] = {&d_out};
            void* clean_args[] = {&d_in, &d_out};
            bool racy = strcmp(name, "read_neighbour_without_barrier") == 0;
            int r = cuLaunchKernel(kernel(name), racy ? 1 : 2, 1, 1, 256, 1, 1, 0, nullptr, racy ? racy_args : clean_args, nullptr);
            std::vector<float> out = host_floats(d_out, racy ? 256 : 512);
            if (r != 0) out.clear();
            return out;
        };
        std::vector<float> racy_forward = run("forward", "read_neighbour_without_barrier");
        std::vector<float> racy_reverse = run("reverse", "read_neighbour_without_barrier");
        std::vector<float> clean_forward = run("forward", "reverse_through_shared");
        std::vector<float> clean_reverse = run("reverse", "reverse_through_shared");
        setenv("ALEXNET_EMULATOR_THREAD_ORDER", "forward", 1);
        cuInit(0);
        report(!racy_forward.empty() && !racy_reverse.empty() && racy_forward != racy_reverse,
               "a race gives different results in the two thread orders", "launch failed or results equal");
        report(!clean_forward.empty() && clean_forward == clean_reverse, "a race-free kernel gives the same results in both orders", "results differ");
        cuMemFree_v2(d_in);
        cuMemFree_v2(d_out);
    }

    // __syncthreads orders shared memory: every element comes back mirrored, in both blocks.
    {
        std::vector<float> in(512);
        for (int i = 0; i < 512; ++i) in[i] = (float)i;
        unsigned long long d_in = device_floats(in), d_out = device_floats(std::vector<float>(512, 0.0f));
        void* args[] = {&d_in, &d_out};
        int r = cuLaunchKernel(kernel("reverse_through_shared"), 2, 1, 1, 256, 1, 1, 0, nullptr, args, nullptr);
        std::vector<float> out = host_floats(d_out, 512);
        bool ok = r == 0;
        for (int b = 0; b < 2; ++b)
            for (int t = 0; t < 256; ++t) ok &= out[b * 256 + t] == (float)(b * 256 + 255 - t);
        report(ok, "__syncthreads orders shared memory", message(r));
        cuMemFree_v2(d_in);
        cuMemFree_v2(d_out);
    }

    // __shfl_xor_sync butterfly: lane values 1..64 over two warps sum to 528 (1..32) and 1552 (33..64).
    {
        std::vector<float> in(64);
        for (int i = 0; i < 64; ++i) in[i] = (float)(i + 1);
        unsigned long long d_in = device_floats(in), d_out = device_floats(std::vector<float>(64, 0.0f));
        void* args[] = {&d_in, &d_out};
        int r = cuLaunchKernel(kernel("warp_sum"), 1, 1, 1, 64, 1, 1, 0, nullptr, args, nullptr);
        std::vector<float> out = host_floats(d_out, 64);
        bool ok = r == 0;
        for (int i = 0; i < 64; ++i) ok &= out[i] == (i < 32 ? 528.0f : 1552.0f);
        report(ok, "__shfl_xor_sync butterfly sums each warp", message(r) + " lane 0: " + std::to_string(out[0]));
        cuMemFree_v2(d_in);
        cuMemFree_v2(d_out);
    }

    // cvt.rna.tf32.f32: 10 mantissa bits kept, round to nearest, ties away from zero (bits written out by hand).
    {
        const unsigned in_bits[] = {
            0x3f800000u, // 1.0: exact
            0x3f801000u, // 1 + 2^-11: a tie, rounds away from zero to 1 + 2^-10
            0x3f800fffu, // just below the tie: rounds down to 1.0
            0xbf801000u, // -(1 + 2^-11): tie, away from zero
            0x3f9ff000u, // 1.2490234375 + 2^-11: a tie whose carry runs through all kept bits, to 1.25
            0x7f800000u, // +infinity stays
        };
        const unsigned expected[] = {0x3f800000u, 0x3f802000u, 0x3f800000u, 0xbf802000u, 0x3fa00000u, 0x7f800000u};
        std::vector<float> in;
        for (unsigned b : in_bits) in.push_back(bits_to_float(b));
        int n = (int)in.size();
        unsigned long long d_in = device_floats(in), d_out = device_floats(std::vector<float>(in.size(), 0.0f));
        void* args[] = {&d_in, &d_out, &n};
        int r = cuLaunchKernel(kernel("round_to_tf32"), 1, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr);
        std::vector<unsigned> out(in.size());
        cuMemcpyDtoH_v2(out.data(), d_out, out.size() * 4);
        bool ok = r == 0;
        std::string why = message(r);
        for (int i = 0; i < n; ++i)
        {
            ok &= out[i] == expected[i];
            char line[96];
            snprintf(line, sizeof line, "; 0x%08x -> 0x%08x (expected 0x%08x)", in_bits[i], out[i], expected[i]);
            why += line;
        }
        report(ok, "to_tf32 rounds to nearest, ties away from zero", why);
        cuMemFree_v2(d_in);
        cuMemFree_v2(d_out);
    }

    // mma.m16n8k8: small integers (exact in TF32 and in float sums), so D must equal A*B + C exactly.
    {
        std::vector<float> a(16 * 8), b(8 * 8), c(16 * 8), expected(16 * 8);
        for (int m = 0; m < 16; ++m)
            for (int k = 0; k < 8; ++k) a[m * 8 + k] = (float)((m * 3 + k * 5) % 7 - 3);
        for (int k = 0; k < 8; ++k)
            for (int n = 0; n < 8; ++n) b[k * 8 + n] = (float)((k * 2 + n * 7) % 5 - 2);
        for (int i = 0; i < 128; ++i) c[i] = (float)(i % 11);
        for (int m = 0; m < 16; ++m)
            for (int n = 0; n < 8; ++n)
            {
                float s = c[m * 8 + n];
                for (int k = 0; k < 8; ++k) s += a[m * 8 + k] * b[k * 8 + n];
                expected[m * 8 + n] = s;
            }
        unsigned long long da = device_floats(a), db = device_floats(b), dc = device_floats(c), dd = device_floats(std::vector<float>(128, 0.0f));
        void* args[] = {&da, &db, &dc, &dd};
        int r = cuLaunchKernel(kernel("mma_16x8x8"), 1, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr);
        std::vector<float> d = host_floats(dd, 128);
        int wrong = 0;
        for (int i = 0; i < 128; ++i) wrong += d[i] != expected[i];
        report(r == 0 && wrong == 0, "mma.m16n8k8 with the PTX fragment layout computes A*B + C", message(r) + ", " + std::to_string(wrong) + " of 128 wrong");
        cuMemFree_v2(da);
        cuMemFree_v2(db);
        cuMemFree_v2(dc);
        cuMemFree_v2(dd);
    }

    printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
