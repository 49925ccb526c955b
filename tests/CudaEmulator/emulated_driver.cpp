// emulated_driver.cpp: the subset of the CUDA driver API that AlexNetCompiler.Cuda binds, implemented on the
// CPU, so that the real runtime (CudaDevice, CudaNetworkRunner, the GPU check program) runs its generated
// kernels end to end on a machine without a GPU. Built by the tests into one shared library together with a
// network's kernels (compiled from the same CUDA source by g++, see cuda_emulation.h) and loaded in place of
// libcuda.so.1 through ALEXNET_CUDA_PATH.
//
// What it checks that a GPU would not report as clearly:
//   - every device allocation ends at an inaccessible page and starts filled with a NaN pattern, so reading
//     past the end, or reading memory no kernel or copy has written, fails or shows up in the results;
//   - a fault inside a kernel becomes CUDA_ERROR_ILLEGAL_ADDRESS naming the kernel, block, thread and buffer;
//   - __syncthreads must be reached by every thread of the block, warp collectives by every lane of the warp;
//   - pointer arguments must be null or point into a device allocation; copies must stay inside one;
//   - the module handed to cuModuleLoadData must contain each kernel asked for by name.
// Blocks run one after another and the threads of a block are fibers switched only at barriers, so a race
// inside a block shows only as a difference between runs in forward and reverse thread order
// (ALEXNET_EMULATOR_THREAD_ORDER), and inter-block ordering bugs are not found; timings are meaningless.
#include "cuda_emulation.h"

#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace emu
{
emu_dim3 thread_idx, block_idx, block_dim, grid_dim;

static KernelRegistration* registered_kernels = nullptr;

KernelRegistration::KernelRegistration(const char* kernel_name, const char* tile, void (*kernel_entry)(void**), bool (*kernel_check)(void**, char*, size_t))
    : name(kernel_name), gemm_tile(tile), entry(kernel_entry), check(kernel_check), next(registered_kernels)
{
    registered_kernels = this;
}

// ---- Results and their messages --------------------------------------------------------------------------
// One list gives both the enum and the names cuGetErrorName returns (values as in cuda.h).
#define EMU_RESULTS(X)                                                                                         \
    X(SUCCESS, 0)                                                                                              \
    X(ERROR_INVALID_VALUE, 1)                                                                                  \
    X(ERROR_OUT_OF_MEMORY, 2)                                                                                  \
    X(ERROR_INVALID_DEVICE, 101)                                                                               \
    X(ERROR_INVALID_IMAGE, 200)                                                                                \
    X(ERROR_INVALID_CONTEXT, 201)                                                                              \
    X(ERROR_INVALID_HANDLE, 400)                                                                               \
    X(ERROR_NOT_FOUND, 500)                                                                                    \
    X(ERROR_ILLEGAL_ADDRESS, 700)                                                                              \
    X(ERROR_LAUNCH_FAILED, 719)                                                                                \
    X(ERROR_NOT_SUPPORTED, 801)

enum Result : int
{
#define EMU_RESULT_VALUE(name, value) name = value,
    EMU_RESULTS(EMU_RESULT_VALUE)
#undef EMU_RESULT_VALUE
};

static std::mutex api_lock; // one call at a time: the emulator has one set of globals
static int last_error = SUCCESS;
static std::string last_message;

static int fail(int code, const std::string& message)
{
    last_error = code;
    last_message = "[CUDA emulator] " + message;
    return code;
}

static const char* error_name(int code)
{
    switch (code)
    {
#define EMU_RESULT_NAME(name, value) \
    case name: return "CUDA_" #name;
        EMU_RESULTS(EMU_RESULT_NAME)
#undef EMU_RESULT_NAME
    default: return nullptr;
    }
}

static std::string format(const char* pattern, ...) __attribute__((format(printf, 1, 2)));
static std::string format(const char* pattern, ...)
{
    char buffer[1024];
    va_list args;
    va_start(args, pattern);
    vsnprintf(buffer, sizeof buffer, pattern, args);
    va_end(args);
    return buffer;
}

// ---- Device memory ---------------------------------------------------------------------------------------
// Each allocation is its own mapping: [guard page][slack][data ... end][guard page]. The data ends exactly
// where the trailing guard page starts, so the first byte read or written past the end faults.
struct Allocation
{
    char* region;
    size_t region_bytes;
    char* data;
    size_t bytes;
};

static std::map<uintptr_t, Allocation> allocations; // by data address
static const size_t page_size = (size_t)sysconf(_SC_PAGESIZE);
// Fresh device memory reads as this pattern: a NaN as float32, 2,141,586,853 as int32 (an index far outside
// any buffer), so results that depend on memory nobody wrote cannot pass for correct ones.
static const uint32_t poison = 0x7fa5a5a5u;

static const Allocation* find_allocation(uintptr_t address)
{
    auto it = allocations.upper_bound(address);
    if (it == allocations.begin()) return nullptr;
    --it;
    const Allocation& a = it->second;
    return address < (uintptr_t)a.data + a.bytes ? &a : nullptr;
}

bool is_device_pointer(const void* pointer) { return find_allocation((uintptr_t)pointer) != nullptr; }

static int check_range(uintptr_t address, size_t bytes, const char* call)
{
    const Allocation* a = find_allocation(address);
    if (a == nullptr) return fail(ERROR_INVALID_VALUE, format("%s: device address 0x%lx is not in any allocation", call, (unsigned long)address));
    size_t offset = address - (uintptr_t)a->data;
    if (bytes > a->bytes - offset)
        return fail(ERROR_INVALID_VALUE, format("%s: %zu bytes at offset %zu run past the end of a %zu-byte allocation", call, bytes, offset, a->bytes));
    return SUCCESS;
}

// Which allocation, fiber stack or nothing an address that faulted belongs to, in words.
static std::vector<char*> fiber_stacks;
static const size_t fiber_stack_bytes = 256 * 1024;

static std::string describe_address(uintptr_t address)
{
    for (const auto& [start, a] : allocations)
    {
        uintptr_t region = (uintptr_t)a.region, data = (uintptr_t)a.data, end = data + a.bytes;
        if (address >= end && address < region + a.region_bytes)
            return format("%zu bytes past the end of the %zu-byte allocation at 0x%lx", (size_t)(address - end), a.bytes, (unsigned long)data);
        if (address >= region && address < data)
            return format("%zu bytes before the start of the %zu-byte allocation at 0x%lx", (size_t)(data - address), a.bytes, (unsigned long)data);
    }
    for (char* stack : fiber_stacks)
        if (address >= (uintptr_t)stack && address < (uintptr_t)stack + page_size)
            return "the guard page of a thread's stack (stack overflow)";
    return address < 65536 ? "a null pointer (plus offset)" : "outside every device allocation";
}

// ---- Fibers and the block scheduler ----------------------------------------------------------------------
enum class FiberState
{
    Runnable,
    AtBarrier,
    AtWarpCollective,
    Finished
};

enum class Collective
{
    ShuffleXor,
    Mma
};

// Switching fibers: on x86-64 a dozen instructions that save the callee-saved registers and the SSE/x87
// control words (System V ABI) and swap stacks; swapcontext, the portable fallback, also saves the signal
// mask with a system call on every switch, which made it several times slower here.
#if defined(__x86_64__)
extern "C" void emu_switch_stack(void** save_stack_pointer, void* next_stack_pointer);
asm(R"(
    .text
    .p2align 4
    .type emu_switch_stack, @function
emu_switch_stack:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch_stack, .-emu_switch_stack
)");

struct FiberContext
{
    void* stack_pointer;
};
#else
struct FiberContext
{
    ucontext_t context;
};
#endif

struct Fiber
{
    FiberContext context;
    FiberState state;
    Collective op;
    int lane_mask;
    float value, result;
    unsigned a[4], b[2];
    float d[4];
};

static FiberContext scheduler_context;
static std::vector<Fiber> fibers;
static int current_fiber;
static void (*current_entry)(void**);
static void** current_parameters;

static void switch_to(FiberContext& save, FiberContext& next)
{
#if defined(__x86_64__)
    emu_switch_stack(&save.stack_pointer, next.stack_pointer);
#else
    swapcontext(&save.context, &next.context);
#endif
}

// Blocks of a kernel that never reached a barrier or warp collective in its first block run without fibers:
// each thread is a plain call, one after another. Should such a block reach one after all, the launch stops
// with an error instead of guessing.
static bool direct_mode;
static long collectives_seen;
static void abort_launch(const std::string& message);

static void yield_to_scheduler(Fiber& self)
{
    if (direct_mode) abort_launch("reached __syncthreads or a warp collective in a block run without fibers, although its first block never did; the emulator cannot run a kernel whose blocks differ in this way");
    ++collectives_seen;
    switch_to(self.context, scheduler_context);
}

static void fiber_main()
{
    current_entry(current_parameters);
    Fiber& self = fibers[current_fiber];
    self.state = FiberState::Finished;
#if defined(__x86_64__)
    switch_to(self.context, scheduler_context); // never resumed
    abort();
#endif
    // With ucontext, returning resumes uc_link, the scheduler.
}

// Prepares a fiber to start in fiber_main on the given stack [low, high).
static void start_fiber(Fiber& f, char* low, char* high)
{
#if defined(__x86_64__)
    // What emu_switch_stack pops: the control words, six callee-saved registers, then fiber_main as the return
    // address; above it a zero "return address" for fiber_main, so that it starts with rsp = 8 (mod 16).
    uintptr_t top = (uintptr_t)high & ~(uintptr_t)15;
    uint64_t* sp = (uint64_t*)top;
    *--sp = 0;
    *--sp = (uint64_t)(uintptr_t)&fiber_main;
    for (int i = 0; i < 6; ++i) *--sp = 0;
    --sp;
    uint32_t mxcsr;
    uint16_t fpcw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpcw));
    memcpy((char*)sp, &mxcsr, 4);
    memcpy((char*)sp + 4, &fpcw, 2);
    f.context.stack_pointer = sp;
#else
    getcontext(&f.context.context);
    f.context.context.uc_stack.ss_sp = low;
    f.context.context.uc_stack.ss_size = (size_t)(high - low);
    f.context.context.uc_link = &scheduler_context.context;
    makecontext(&f.context.context, fiber_main, 0);
#endif
}

void sync_block()
{
    Fiber& self = fibers[current_fiber];
    self.state = FiberState::AtBarrier;
    yield_to_scheduler(self);
}

float shfl_xor(unsigned mask, float value, int lane_mask)
{
    if (mask != 0xffffffffu) abort_launch(format("__shfl_xor_sync with member mask 0x%x: only full warps are emulated", mask));
    if (lane_mask < 0 || lane_mask > 31) abort_launch(format("__shfl_xor_sync with lane mask %d", lane_mask));
    Fiber& self = fibers[current_fiber];
    self.op = Collective::ShuffleXor;
    self.value = value;
    self.lane_mask = lane_mask;
    self.state = FiberState::AtWarpCollective;
    yield_to_scheduler(self);
    return self.result;
}

void mma_m16n8k8_tf32(float* d, unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0, unsigned b1)
{
    Fiber& self = fibers[current_fiber];
    self.op = Collective::Mma;
    self.a[0] = a0, self.a[1] = a1, self.a[2] = a2, self.a[3] = a3;
    self.b[0] = b0, self.b[1] = b1;
    for (int i = 0; i < 4; ++i) self.d[i] = d[i];
    self.state = FiberState::AtWarpCollective;
    yield_to_scheduler(self);
    for (int i = 0; i < 4; ++i) d[i] = self.d[i];
}

// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 over one warp, with the fragment layout of the PTX ISA
// (section "Matrix Fragments for mma.m16n8k8", .tf32): with g = lane / 4 and q = lane % 4,
//   A (16 x 8):  a0 = A[g][q], a1 = A[g + 8][q], a2 = A[g][q + 4], a3 = A[g + 8][q + 4]
//   B (8 x 8):   b0 = B[q][g], b1 = B[q + 4][g]
//   C, D (16x8): c0 = C[g][2q], c1 = C[g][2q + 1], c2 = C[g + 8][2q], c3 = C[g + 8][2q + 1]
// The tensor cores read only the TF32 bits of each input register (the low 13 mantissa bits are ignored).
static void resolve_mma(Fiber* lanes)
{
    float A[16][8], B[8][8], C[16][8];
#ifdef EMU_TF32_EXACT
    auto tf32 = [](unsigned bits) { return __uint_as_float(bits); };
#else
    auto tf32 = [](unsigned bits) { return __uint_as_float(bits & 0xffffe000u); };
#endif
    for (int lane = 0; lane < 32; ++lane)
    {
        const Fiber& f = lanes[lane];
        int g = lane >> 2, q = lane & 3;
        A[g][q] = tf32(f.a[0]);
        A[g + 8][q] = tf32(f.a[1]);
        A[g][q + 4] = tf32(f.a[2]);
        A[g + 8][q + 4] = tf32(f.a[3]);
        B[q][g] = tf32(f.b[0]);
        B[q + 4][g] = tf32(f.b[1]);
        C[g][2 * q] = f.d[0];
        C[g][2 * q + 1] = f.d[1];
        C[g + 8][2 * q] = f.d[2];
        C[g + 8][2 * q + 1] = f.d[3];
    }
    float D[16][8];
    for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 8; ++n)
        {
            float sum = C[m][n];
            for (int k = 0; k < 8; ++k) sum = fmaf(A[m][k], B[k][n], sum);
            D[m][n] = sum;
        }
    for (int lane = 0; lane < 32; ++lane)
    {
        Fiber& f = lanes[lane];
        int g = lane >> 2, q = lane & 3;
        f.d[0] = D[g][2 * q];
        f.d[1] = D[g][2 * q + 1];
        f.d[2] = D[g + 8][2 * q];
        f.d[3] = D[g + 8][2 * q + 1];
    }
}

// The launch in progress, for fault reports.
static const char* current_kernel = "";
static volatile sig_atomic_t in_kernel = 0;
static sigjmp_buf fault_jump;
static void* volatile fault_address;
static volatile int fault_signal;
static std::string abort_message;

static void abort_launch(const std::string& message)
{
    abort_message = message;
    in_kernel = 0;
    siglongjmp(fault_jump, 2);
}

static std::string where_now()
{
    return format("block (%u, %u, %u), thread (%u, %u, %u)", block_idx.x, block_idx.y, block_idx.z, thread_idx.x, thread_idx.y, thread_idx.z);
}

static std::string describe_stuck_block(int threads)
{
    int at_barrier = 0, finished = 0, at_collective = 0, first_finished = -1, first_barrier = -1;
    for (int t = 0; t < threads; ++t)
    {
        switch (fibers[t].state)
        {
        case FiberState::AtBarrier: ++at_barrier; if (first_barrier < 0) first_barrier = t; break;
        case FiberState::Finished: ++finished; if (first_finished < 0) first_finished = t; break;
        case FiberState::AtWarpCollective: ++at_collective; break;
        default: break;
        }
    }
    return format("kernel '%s', block (%u, %u, %u): the threads cannot all reach the same barrier: %d of %d wait at "
                  "__syncthreads (first: thread %d), %d have exited (first: thread %d), %d wait at a warp collective "
                  "whose warp is incomplete",
                  current_kernel, block_idx.x, block_idx.y, block_idx.z, at_barrier, threads, first_barrier, finished,
                  first_finished, at_collective);
}

// Runs one block to completion; returns an error message or "".
// The order in which a block's threads run between two barriers: forward (0, 1, ...) or, with
// ALEXNET_EMULATOR_THREAD_ORDER=reverse, backward. A kernel free of races gives bit-identical results in both;
// one that reads what another thread of its block writes without a barrier between them does not.
static bool reverse_thread_order = false;

static std::string run_block(int threads)
{
    auto nth = [threads](int i) { return reverse_thread_order ? threads - 1 - i : i; };
    if (direct_mode)
    {
        for (int i = 0; i < threads; ++i)
        {
            int t = nth(i);
            current_fiber = t;
            thread_idx = {t % block_dim.x, (t / block_dim.x) % block_dim.y, t / (block_dim.x * block_dim.y)};
            current_entry(current_parameters);
        }
        return "";
    }
    for (int t = 0; t < threads; ++t)
    {
        Fiber& f = fibers[t];
        start_fiber(f, fiber_stacks[t] + page_size, fiber_stacks[t] + fiber_stack_bytes);
        f.state = FiberState::Runnable;
    }
    for (;;)
    {
        for (int i = 0; i < threads; ++i)
        {
            int t = nth(i);
            if (fibers[t].state != FiberState::Runnable) continue;
            current_fiber = t;
            thread_idx = {t % block_dim.x, (t / block_dim.x) % block_dim.y, t / (block_dim.x * block_dim.y)};
            switch_to(scheduler_context, fibers[t].context);
        }
        int finished = 0, at_barrier = 0;
        for (int t = 0; t < threads; ++t)
        {
            finished += fibers[t].state == FiberState::Finished;
            at_barrier += fibers[t].state == FiberState::AtBarrier;
        }
        if (finished == threads) return "";

        // Warp collectives: a warp goes on once all 32 of its lanes have reached the same one.
        bool released = false;
        for (int w = 0; w * 32 < threads; ++w)
        {
            Fiber* lanes = &fibers[w * 32];
            int width = std::min(32, threads - w * 32), waiting = 0;
            for (int l = 0; l < width; ++l) waiting += lanes[l].state == FiberState::AtWarpCollective;
            if (waiting == 0 || waiting < width) continue;
            if (width < 32) return format("kernel '%s', block (%u, %u, %u): warp %d has only %d threads and cannot run a warp collective", current_kernel, block_idx.x, block_idx.y, block_idx.z, w, width);
            for (int l = 1; l < 32; ++l)
                if (lanes[l].op != lanes[0].op || (lanes[0].op == Collective::ShuffleXor && lanes[l].lane_mask != lanes[0].lane_mask))
                    return format("kernel '%s', block (%u, %u, %u): the lanes of warp %d reached different warp collectives (lanes 0 and %d)", current_kernel, block_idx.x, block_idx.y, block_idx.z, w, l);
            if (lanes[0].op == Collective::ShuffleXor)
                for (int l = 0; l < 32; ++l) lanes[l].result = lanes[l ^ lanes[l].lane_mask].value;
            else
                resolve_mma(lanes);
            for (int l = 0; l < 32; ++l) lanes[l].state = FiberState::Runnable;
            released = true;
        }
        if (released) continue;

        // __syncthreads: every thread of the block, none exited (a barrier that only some threads can reach
        // is undefined behaviour in CUDA, so it is reported, not guessed at).
        if (at_barrier == threads)
        {
            for (int t = 0; t < threads; ++t) fibers[t].state = FiberState::Runnable;
            continue;
        }
        return describe_stuck_block(threads);
    }
}

static void on_fault(int signal_number, siginfo_t* info, void* context);
static struct sigaction previous_segv, previous_bus;

static void install_fault_handler()
{
    static bool installed = false;
    if (installed) return;
    struct sigaction action = {};
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_segv);
    sigaction(SIGBUS, &action, &previous_bus);
    installed = true;
}

// A fault while a kernel runs ends the launch (back to cuLaunchKernel); any other fault belongs to the host
// process (the .NET runtime turns some into NullReferenceException) and goes to the handler installed before.
static void on_fault(int signal_number, siginfo_t* info, void* context)
{
    if (in_kernel)
    {
        in_kernel = 0;
        fault_address = info->si_addr;
        fault_signal = signal_number;
        siglongjmp(fault_jump, 1);
    }
    struct sigaction& previous = signal_number == SIGSEGV ? previous_segv : previous_bus;
    if (previous.sa_flags & SA_SIGINFO)
        previous.sa_sigaction(signal_number, info, context);
    else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN)
        previous.sa_handler(signal_number);
    else
    {
        signal(signal_number, SIG_DFL);
        raise(signal_number);
    }
}

static int ensure_fibers(int threads)
{
    while ((int)fiber_stacks.size() < threads)
    {
        void* stack = mmap(nullptr, fiber_stack_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (stack == MAP_FAILED) return fail(ERROR_OUT_OF_MEMORY, "cannot map a fiber stack");
        mprotect(stack, page_size, PROT_NONE); // stacks grow down: the lowest page is the guard
        fiber_stacks.push_back((char*)stack);
    }
    if ((int)fibers.size() < threads) fibers.resize(threads);
    return SUCCESS;
}

// ---- Handles ---------------------------------------------------------------------------------------------
struct Module
{
    std::string image;
    bool is_elf;
    std::string gemm_tile; // from the prelude's alexnet_gemm_tile_<BM>x<BN> marker kernel; "" when the image has none
};

// The GEMM tile a module was compiled with: the prelude defines an empty kernel alexnet_gemm_tile_<BM>x<BN>.
static std::string module_gemm_tile(const std::string& image)
{
    const std::string marker = "alexnet_gemm_tile_";
    size_t at = image.find(marker);
    if (at == std::string::npos) return "";
    size_t end = at + marker.size();
    while (end < image.size() && (isdigit((unsigned char)image[end]) || image[end] == 'x')) ++end;
    return image.substr(at + marker.size(), end - at - marker.size());
}

struct Function
{
    const KernelRegistration* kernel;
    int max_dynamic_shared;
};

struct Event
{
    std::chrono::steady_clock::time_point time;
    bool recorded;
};

static int context_handle = 1;
static int stream_handle = 1;

static bool image_names(const Module& module, const char* name)
{
    std::string n = name;
    if (module.is_elf) return module.image.find(n + '\0') != std::string::npos; // the symbol string table
    return module.image.find(".entry " + n + "(") != std::string::npos;
}

static const size_t total_memory = 16ull << 30;
} // namespace emu

using namespace emu;

// ---- The driver API --------------------------------------------------------------------------------------
#define EXPORT extern "C" __attribute__((visibility("default")))
#define LOCKED std::lock_guard<std::mutex> guard(api_lock)

EXPORT int cuInit(unsigned flags)
{
    LOCKED;
    if (flags != 0) return fail(ERROR_INVALID_VALUE, "cuInit: flags must be 0");
    const char* order = getenv("ALEXNET_EMULATOR_THREAD_ORDER");
    if (order != nullptr && strcmp(order, "forward") != 0 && strcmp(order, "reverse") != 0)
        return fail(ERROR_INVALID_VALUE, format("cuInit: ALEXNET_EMULATOR_THREAD_ORDER is '%s'; use forward or reverse", order));
    reverse_thread_order = order != nullptr && strcmp(order, "reverse") == 0;
    install_fault_handler();
    return SUCCESS;
}

EXPORT int cuDriverGetVersion(int* version)
{
    *version = 12000;
    return SUCCESS;
}

EXPORT int cuGetErrorName(int error, const char** name)
{
    const char* n = error_name(error);
    if (n == nullptr) return ERROR_INVALID_VALUE;
    *name = n;
    return SUCCESS;
}

EXPORT int cuGetErrorString(int error, const char** text)
{
    if (error_name(error) == nullptr) return ERROR_INVALID_VALUE;
    // The detailed message of the last failure when this is its code; the code's name otherwise.
    *text = error == last_error && !last_message.empty() ? last_message.c_str() : error_name(error);
    return SUCCESS;
}

EXPORT int cuDeviceGetCount(int* count)
{
    *count = 1;
    return SUCCESS;
}

EXPORT int cuDeviceGet(int* device, int ordinal)
{
    if (ordinal != 0) return fail(ERROR_INVALID_DEVICE, format("cuDeviceGet: ordinal %d; the emulator has one device", ordinal));
    *device = 0;
    return SUCCESS;
}

EXPORT int cuDeviceGetName(char* name, int length, int device)
{
    if (device != 0 || length <= 0) return fail(ERROR_INVALID_VALUE, "cuDeviceGetName: bad device or length");
    snprintf(name, (size_t)length, "CUDA emulator (CPU)");
    return SUCCESS;
}

static std::pair<int, int> compute_capability()
{
    const char* text = getenv("ALEXNET_EMULATOR_COMPUTE_CAPABILITY");
    int major = 0, minor = 0;
    if (text != nullptr && sscanf(text, "%d.%d", &major, &minor) == 2 && major > 0 && minor >= 0) return {major, minor};
    return {8, 0};
}

EXPORT int cuDeviceGetAttribute(int* value, int attribute, int device)
{
    if (device != 0) return fail(ERROR_INVALID_DEVICE, "cuDeviceGetAttribute: bad device");
    switch (attribute)
    {
    case 16: *value = 1; return SUCCESS;          // multiprocessors
    case 13: *value = 1000000; return SUCCESS;    // clock rate, kHz
    // Compute capability: 8.0, so the runtime asks NVRTC for sm_80; ALEXNET_EMULATOR_COMPUTE_CAPABILITY=9.0 poses as a
    // Hopper GPU, so that the packed GPU check looks up its prebuilt sm_90 kernel cache exactly as it will on one.
    case 75: *value = compute_capability().first; return SUCCESS;
    case 76: *value = compute_capability().second; return SUCCESS;
    case 97: *value = 166912; return SUCCESS;     // shared memory per block, opt-in (an A100's)
    default: return fail(ERROR_INVALID_VALUE, format("cuDeviceGetAttribute: attribute %d is not emulated", attribute));
    }
}

EXPORT int cuDeviceTotalMem_v2(size_t* bytes, int device)
{
    if (device != 0) return fail(ERROR_INVALID_DEVICE, "cuDeviceTotalMem: bad device");
    *bytes = total_memory;
    return SUCCESS;
}

EXPORT int cuDevicePrimaryCtxRetain(void** context, int device)
{
    if (device != 0) return fail(ERROR_INVALID_DEVICE, "cuDevicePrimaryCtxRetain: bad device");
    *context = &context_handle;
    return SUCCESS;
}

EXPORT int cuDevicePrimaryCtxRelease_v2(int device) { return device == 0 ? SUCCESS : fail(ERROR_INVALID_DEVICE, "cuDevicePrimaryCtxRelease: bad device"); }

EXPORT int cuCtxSetCurrent(void* context)
{
    if (context != nullptr && context != &context_handle) return fail(ERROR_INVALID_CONTEXT, "cuCtxSetCurrent: not the primary context");
    return SUCCESS;
}

EXPORT int cuCtxSynchronize() { return SUCCESS; }

EXPORT int cuMemAlloc_v2(unsigned long long* pointer, size_t bytes)
{
    LOCKED;
    if (bytes == 0) return fail(ERROR_INVALID_VALUE, "cuMemAlloc: 0 bytes");
    size_t placed = (bytes + 3) & ~(size_t)3; // keeps the data 4-byte aligned
    size_t data_pages = (placed + page_size - 1) / page_size * page_size;
    size_t region_bytes = data_pages + 2 * page_size;
    void* region = mmap(nullptr, region_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) return fail(ERROR_OUT_OF_MEMORY, format("cuMemAlloc: cannot map %zu bytes", bytes));
    char* r = (char*)region;
    mprotect(r, page_size, PROT_NONE);
    mprotect(r + page_size + data_pages, page_size, PROT_NONE);
    char* data = r + page_size + (data_pages - placed);
    uint32_t* words = (uint32_t*)data;
    for (size_t i = 0; i < placed / 4; ++i) words[i] = poison;
    allocations[(uintptr_t)data] = Allocation{r, region_bytes, data, bytes};
    *pointer = (uintptr_t)data;
    return SUCCESS;
}

EXPORT int cuMemFree_v2(unsigned long long pointer)
{
    LOCKED;
    auto it = allocations.find((uintptr_t)pointer);
    if (it == allocations.end()) return fail(ERROR_INVALID_VALUE, format("cuMemFree: 0x%llx is not the start of an allocation", pointer));
    munmap(it->second.region, it->second.region_bytes);
    allocations.erase(it);
    return SUCCESS;
}

EXPORT int cuMemcpyHtoD_v2(unsigned long long destination, const void* source, size_t bytes)
{
    LOCKED;
    if (int r = check_range((uintptr_t)destination, bytes, "cuMemcpyHtoD")) return r;
    memcpy((void*)(uintptr_t)destination, source, bytes);
    return SUCCESS;
}

EXPORT int cuMemcpyDtoH_v2(void* destination, unsigned long long source, size_t bytes)
{
    LOCKED;
    if (int r = check_range((uintptr_t)source, bytes, "cuMemcpyDtoH")) return r;
    memcpy(destination, (const void*)(uintptr_t)source, bytes);
    return SUCCESS;
}

EXPORT int cuMemcpyDtoD_v2(unsigned long long destination, unsigned long long source, size_t bytes)
{
    LOCKED;
    if (int r = check_range((uintptr_t)source, bytes, "cuMemcpyDtoD (source)")) return r;
    if (int r = check_range((uintptr_t)destination, bytes, "cuMemcpyDtoD (destination)")) return r;
    memmove((void*)(uintptr_t)destination, (const void*)(uintptr_t)source, bytes);
    return SUCCESS;
}

static int memset32(unsigned long long destination, unsigned value, size_t count, const char* call)
{
    LOCKED;
    if (destination % 4 != 0) return fail(ERROR_INVALID_VALUE, format("%s: address 0x%llx is not 4-byte aligned", call, destination));
    if (int r = check_range((uintptr_t)destination, count * 4, call)) return r;
    uint32_t* words = (uint32_t*)(uintptr_t)destination;
    for (size_t i = 0; i < count; ++i) words[i] = value;
    return SUCCESS;
}

EXPORT int cuMemsetD32_v2(unsigned long long destination, unsigned value, size_t count) { return memset32(destination, value, count, "cuMemsetD32"); }
EXPORT int cuMemsetD32Async(unsigned long long destination, unsigned value, size_t count, void*) { return memset32(destination, value, count, "cuMemsetD32Async"); }

EXPORT int cuModuleLoadData(void** module, const void* image)
{
    LOCKED;
    if (image == nullptr) return fail(ERROR_INVALID_VALUE, "cuModuleLoadData: null image");
    const unsigned char* bytes = (const unsigned char*)image;
    auto* m = new Module();
    if (bytes[0] == 0x7f && bytes[1] == 'E' && bytes[2] == 'L' && bytes[3] == 'F')
    {
        if (bytes[4] != 2) { delete m; return fail(ERROR_INVALID_IMAGE, "cuModuleLoadData: not a 64-bit ELF image"); }
        // ELF64 header: e_shoff at 40, e_shentsize at 58, e_shnum at 60; the section headers end the file.
        uint64_t shoff;
        uint16_t shentsize, shnum;
        memcpy(&shoff, bytes + 40, 8);
        memcpy(&shentsize, bytes + 58, 2);
        memcpy(&shnum, bytes + 60, 2);
        m->image.assign((const char*)bytes, (size_t)(shoff + (uint64_t)shentsize * shnum));
        m->is_elf = true;
    }
    else
    {
        m->image = (const char*)bytes;
        m->is_elf = false;
        if (m->image.find(".version") == std::string::npos || m->image.find(".target") == std::string::npos)
        {
            delete m;
            return fail(ERROR_INVALID_IMAGE, "cuModuleLoadData: the image is neither a CUBIN (ELF) nor PTX text");
        }
    }
    m->gemm_tile = module_gemm_tile(m->image);
    *module = m;
    return SUCCESS;
}

EXPORT int cuModuleGetFunction(void** function, void* module, const char* name)
{
    LOCKED;
    if (module == nullptr) return fail(ERROR_INVALID_HANDLE, "cuModuleGetFunction: null module");
    const Module& m = *(const Module*)module;
    if (!image_names(m, name))
        return fail(ERROR_NOT_FOUND, format("cuModuleGetFunction: the loaded %s has no kernel named '%s'", m.is_elf ? "CUBIN" : "PTX", name));
    // A kernel registered without a tile serves any module; one compiled for a tile serves modules of that tile.
    std::string other_tiles;
    for (const KernelRegistration* k = registered_kernels; k != nullptr; k = k->next)
    {
        if (strcmp(k->name, name) != 0) continue;
        if (k->gemm_tile[0] == '\0' || m.gemm_tile == k->gemm_tile)
        {
            *function = new Function{k, 0};
            return SUCCESS;
        }
        other_tiles += other_tiles.empty() ? k->gemm_tile : std::string(", ") + k->gemm_tile;
    }
    if (!other_tiles.empty())
        return fail(ERROR_NOT_FOUND, format("cuModuleGetFunction: kernel '%s' of a module compiled for GEMM tile %s was compiled into the emulator library only for %s",
                                            name, m.gemm_tile.empty() ? "(none)" : m.gemm_tile.c_str(), other_tiles.c_str()));
    return fail(ERROR_NOT_FOUND, format("cuModuleGetFunction: kernel '%s' is in the module but was not compiled into the emulator library", name));
}

EXPORT int cuModuleUnload(void* module)
{
    LOCKED;
    delete (Module*)module;
    return SUCCESS;
}

EXPORT int cuFuncSetAttribute(void* function, int attribute, int value)
{
    LOCKED;
    if (attribute == 8 && value >= 0 && value <= 166912)
    {
        ((Function*)function)->max_dynamic_shared = value;
        return SUCCESS;
    }
    return fail(ERROR_NOT_SUPPORTED, format("cuFuncSetAttribute: attribute %d = %d is not emulated", attribute, value));
}

EXPORT int cuFuncGetAttribute(int* value, int attribute, void*)
{
    if (attribute == 4) // registers per thread: unknown on the CPU
    {
        *value = 0;
        return SUCCESS;
    }
    return fail(ERROR_NOT_SUPPORTED, format("cuFuncGetAttribute: attribute %d is not emulated", attribute));
}

EXPORT int cuLaunchKernel(void* function, unsigned grid_x, unsigned grid_y, unsigned grid_z, unsigned block_x, unsigned block_y,
                          unsigned block_z, unsigned shared_bytes, void*, void** parameters, void** extra)
{
    LOCKED;
    if (function == nullptr) return fail(ERROR_INVALID_HANDLE, "cuLaunchKernel: null function");
    const KernelRegistration* kernel = ((Function*)function)->kernel;
    unsigned long long threads = (unsigned long long)block_x * block_y * block_z;
    if (grid_x == 0 || grid_y == 0 || grid_z == 0 || grid_x > 0x7fffffffu || grid_y > 65535 || grid_z > 65535)
        return fail(ERROR_INVALID_VALUE, format("cuLaunchKernel '%s': grid (%u, %u, %u) is outside (1..2^31-1, 1..65535, 1..65535)", kernel->name, grid_x, grid_y, grid_z));
    if (threads == 0 || threads > 1024 || block_z > 64)
        return fail(ERROR_INVALID_VALUE, format("cuLaunchKernel '%s': block (%u, %u, %u) is not a valid block shape", kernel->name, block_x, block_y, block_z));
    if (shared_bytes != 0) return fail(ERROR_NOT_SUPPORTED, format("cuLaunchKernel '%s': dynamic shared memory is not emulated", kernel->name));
    if (extra != nullptr || parameters == nullptr) return fail(ERROR_INVALID_VALUE, format("cuLaunchKernel '%s': parameters must be passed in kernelParams", kernel->name));
    char error[512];
    if (!kernel->check(parameters, error, sizeof error)) return fail(ERROR_INVALID_VALUE, std::string("cuLaunchKernel: ") + error);
    if (int r = ensure_fibers((int)threads)) return r;

    current_kernel = kernel->name;
    current_entry = kernel->entry;
    current_parameters = parameters;
    grid_dim = {grid_x, grid_y, grid_z};
    block_dim = {block_x, block_y, block_z};
    thread_idx = {0, 0, 0};
    block_idx = {0, 0, 0};
    direct_mode = false;
    if (int jumped = sigsetjmp(fault_jump, 1); jumped != 0)
    {
        direct_mode = false;
        if (jumped == 2) return fail(ERROR_LAUNCH_FAILED, format("kernel '%s', %s: %s", kernel->name, where_now().c_str(), abort_message.c_str()));
        return fail(ERROR_ILLEGAL_ADDRESS,
                    format("kernel '%s', %s: %s at address %p, %s", kernel->name, where_now().c_str(),
                           fault_signal == SIGBUS ? "bus error" : "invalid memory access", fault_address,
                           describe_address((uintptr_t)fault_address).c_str()));
    }
    in_kernel = 1;
    for (unsigned z = 0; z < grid_z; ++z)
        for (unsigned y = 0; y < grid_y; ++y)
            for (unsigned x = 0; x < grid_x; ++x)
            {
                block_idx = {x, y, z};
                bool first_block = x == 0 && y == 0 && z == 0;
                if (first_block) collectives_seen = 0;
                std::string failure = run_block((int)threads);
                if (!failure.empty())
                {
                    in_kernel = 0;
                    direct_mode = false;
                    return fail(ERROR_LAUNCH_FAILED, failure);
                }
                if (first_block && collectives_seen == 0) direct_mode = true;
            }
    in_kernel = 0;
    direct_mode = false;
    return SUCCESS;
}

EXPORT int cuStreamCreate(void** stream, unsigned)
{
    *stream = &stream_handle;
    return SUCCESS;
}
EXPORT int cuStreamDestroy_v2(void*) { return SUCCESS; }
EXPORT int cuStreamSynchronize(void*) { return SUCCESS; }

EXPORT int cuEventCreate(void** event, unsigned)
{
    *event = new Event{{}, false};
    return SUCCESS;
}

EXPORT int cuEventRecord(void* event, void*)
{
    auto* e = (Event*)event;
    e->time = std::chrono::steady_clock::now();
    e->recorded = true;
    return SUCCESS;
}

EXPORT int cuEventSynchronize(void*) { return SUCCESS; }
EXPORT int cuEventQuery(void*) { return SUCCESS; } // every launch and copy has finished when its call returns

EXPORT int cuEventElapsedTime(float* milliseconds, void* start, void* end)
{
    auto *s = (Event*)start, *e = (Event*)end;
    if (!s->recorded || !e->recorded) return fail(ERROR_INVALID_HANDLE, "cuEventElapsedTime: an event was never recorded");
    *milliseconds = std::chrono::duration<float, std::milli>(e->time - s->time).count();
    return SUCCESS;
}

EXPORT int cuEventDestroy_v2(void* event)
{
    delete (Event*)event;
    return SUCCESS;
}
