// fake_nccl.cpp: the NCCL functions AlexNetCompiler.Distributed binds (NcclApi.cs), implemented on the CPU for the
// ranks of one process (threads), so that NcclCommunicator and CudaDataParallelEngine run end to end on the CUDA
// emulator, where a device pointer is a host address. Built by the tests with g++ and loaded in place of
// libnccl.so.2 through ALEXNET_NCCL_PATH.
//
// What it models: a communicator per rank, joined through the 128-byte unique id (ncclCommInitRank returns when
// every rank has joined); collectives matched by their order on each rank, as NCCL matches them; a sum in rank order
// (((r0 + r1) + r2) ...), the same on every rank. A collective runs when its call returns, as the emulator's launches
// do: the last rank to arrive computes it and the others wait for it in their call. What it checks: the data type is
// ncclFloat32 and the operation ncclSum, the ranks agree on each collective's kind, length and root, and a rank does
// not wait for ever (a peer missing for longer than the wait limit sets ncclRemoteError as the communicator's
// asynchronous error, as NCCL does when a peer process is gone). Not modelled: streams (nothing is asynchronous),
// several processes, groups, other types and operations.
//
// For the tests: fake_nccl_fail_next(name, result) makes the next call of that function return result;
// fake_nccl_set_async_error(result) makes every communicator report result from ncclCommGetAsyncError after its next
// collective; fake_nccl_set_wait_ms(ms) bounds how long a rank waits for its peers (default 60 s).
#include <condition_variable>
#include <functional>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>
#include <unistd.h>

#define EXPORT extern "C" __attribute__((visibility("default")))

namespace
{
enum Result : int
{
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5,
    ncclRemoteError = 6,
    ncclInProgress = 7,
    ncclTimeout = 8,
};

const int ncclFloat32 = 7; // nccl.h: ncclDataType_t
const int ncclSum = 0;     // nccl.h: ncclRedOp_t
const size_t unique_id_bytes = 128;
const char magic[] = "alexnet fake nccl";

struct UniqueId
{
    char internal[unique_id_bytes];
};

struct Operation
{
    std::string kind;
    size_t count = 0;
    int root = -1;
    std::vector<const float*> send;
    std::vector<float*> receive;
    int arrived = 0;
    bool done = false;
    int error = ncclSuccess;
};

struct Clique
{
    int size = 0;
    int joined = 0;
    std::map<unsigned long long, std::shared_ptr<Operation>> open;
};

struct Comm
{
    std::shared_ptr<Clique> clique;
    int rank = 0;
    unsigned long long sequence = 0;
    int async_error = ncclSuccess;
};

std::mutex lock;
std::condition_variable changed;
std::map<std::string, std::shared_ptr<Clique>> cliques;
std::map<std::string, int> fail_next;
int pending_async_error = ncclSuccess;
long long wait_ms = 60000;
unsigned long long ids_made = 0;

// The result injected for this call, if any (consumed). Called with the lock held.
int injected(const char* call)
{
    auto it = fail_next.find(call);
    if (it == fail_next.end()) return ncclSuccess;
    int result = it->second;
    fail_next.erase(it);
    return result;
}

bool wait_for(std::unique_lock<std::mutex>& held, const std::function<bool()>& ready)
{
    return changed.wait_for(held, std::chrono::milliseconds(wait_ms), ready);
}

int collective(Comm* comm, const char* kind, const void* send, void* receive, size_t count, int datatype, int op, int root)
{
    std::unique_lock<std::mutex> held(lock);
    if (int result = injected(kind)) return result;
    if (comm == nullptr || comm->clique == nullptr) return ncclInvalidArgument;
    if (datatype != ncclFloat32 || op != ncclSum) return ncclInvalidArgument;
    if (count > 0 && (send == nullptr || receive == nullptr)) return ncclInvalidArgument;
    Clique& clique = *comm->clique;
    if (root >= clique.size) return ncclInvalidArgument;
    unsigned long long sequence = comm->sequence++;
    std::shared_ptr<Operation>& slot = clique.open[sequence];
    if (!slot)
    {
        slot = std::make_shared<Operation>();
        slot->kind = kind;
        slot->count = count;
        slot->root = root;
        slot->send.assign(clique.size, nullptr);
        slot->receive.assign(clique.size, nullptr);
    }
    std::shared_ptr<Operation> operation = slot;
    if (operation->kind != kind || operation->count != count || operation->root != root) operation->error = ncclInvalidUsage;
    operation->send[comm->rank] = (const float*)send;
    operation->receive[comm->rank] = (float*)receive;
    if (++operation->arrived == clique.size)
    {
        clique.open.erase(sequence);
        if (operation->error == ncclSuccess && count > 0)
        {
            std::vector<float> result(count);
            if (operation->root < 0)
            {
                std::memcpy(result.data(), operation->send[0], count * sizeof(float));
                for (int r = 1; r < clique.size; ++r)
                    for (size_t i = 0; i < count; ++i) result[i] += operation->send[r][i];
            }
            else
            {
                std::memcpy(result.data(), operation->send[operation->root], count * sizeof(float));
            }
            for (int r = 0; r < clique.size; ++r) std::memcpy(operation->receive[r], result.data(), count * sizeof(float));
        }
        operation->done = true;
        changed.notify_all();
    }
    else if (!wait_for(held, [&] { return operation->done; }))
    {
        comm->async_error = ncclRemoteError; // a peer never came: NCCL reports a lost peer the same way
        return ncclSuccess;                  // the call itself only enqueues
    }
    if (operation->error != ncclSuccess) comm->async_error = operation->error;
    if (pending_async_error != ncclSuccess) comm->async_error = pending_async_error;
    return ncclSuccess;
}
} // namespace

EXPORT int ncclGetVersion(int* version)
{
    std::lock_guard<std::mutex> held(lock);
    if (int result = injected("ncclGetVersion")) return result;
    if (version == nullptr) return ncclInvalidArgument;
    *version = 29900; // 2.99.0: no real NCCL has it
    return ncclSuccess;
}

EXPORT int ncclGetUniqueId(UniqueId* id)
{
    std::lock_guard<std::mutex> held(lock);
    if (int result = injected("ncclGetUniqueId")) return result;
    if (id == nullptr) return ncclInvalidArgument;
    std::memset(id->internal, 0, unique_id_bytes);
    std::memcpy(id->internal, magic, sizeof magic);
    unsigned long long serial = ++ids_made, process = (unsigned long long)getpid(),
                       clock = (unsigned long long)std::chrono::steady_clock::now().time_since_epoch().count();
    std::memcpy(id->internal + 32, &serial, sizeof serial);
    std::memcpy(id->internal + 40, &process, sizeof process);
    std::memcpy(id->internal + 48, &clock, sizeof clock);
    id->internal[unique_id_bytes - 1] = 0x5a; // the last byte too, so a truncated id does not match
    return ncclSuccess;
}

// The id is passed by value (a 128-byte struct, in memory), as nccl.h declares it.
EXPORT int ncclCommInitRank(Comm** comm, int size, UniqueId id, int rank)
{
    std::unique_lock<std::mutex> held(lock);
    if (int result = injected("ncclCommInitRank")) return result;
    if (comm == nullptr || size < 1 || rank < 0 || rank >= size) return ncclInvalidArgument;
    if (std::memcmp(id.internal, magic, sizeof magic) != 0 || id.internal[unique_id_bytes - 1] != 0x5a) return ncclInvalidArgument;
    std::string key(id.internal, unique_id_bytes);
    std::shared_ptr<Clique>& slot = cliques[key];
    if (!slot)
    {
        slot = std::make_shared<Clique>();
        slot->size = size;
    }
    std::shared_ptr<Clique> clique = slot;
    if (clique->size != size) return ncclInvalidUsage;
    ++clique->joined;
    changed.notify_all();
    if (!wait_for(held, [&] { return clique->joined >= clique->size; })) return ncclRemoteError;
    *comm = new Comm{clique, rank};
    return ncclSuccess;
}

EXPORT int ncclCommDestroy(Comm* comm)
{
    std::lock_guard<std::mutex> held(lock);
    if (int result = injected("ncclCommDestroy")) return result;
    delete comm;
    return ncclSuccess;
}

EXPORT int ncclCommAbort(Comm* comm)
{
    std::lock_guard<std::mutex> held(lock);
    delete comm;
    return ncclSuccess;
}

EXPORT int ncclCommGetAsyncError(Comm* comm, int* error)
{
    std::lock_guard<std::mutex> held(lock);
    if (comm == nullptr || error == nullptr) return ncclInvalidArgument;
    *error = comm->async_error;
    return ncclSuccess;
}

EXPORT const char* ncclGetErrorString(int result)
{
    switch (result)
    {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    case ncclTimeout: return "timeout";
    default: return "unknown result code";
    }
}

EXPORT int ncclAllReduce(const void* send, void* receive, size_t count, int datatype, int op, Comm* comm, void* /*stream*/)
{
    return collective(comm, "ncclAllReduce", send, receive, count, datatype, op, -1);
}

EXPORT int ncclBroadcast(const void* send, void* receive, size_t count, int datatype, int root, Comm* comm, void* /*stream*/)
{
    if (root < 0) return ncclInvalidArgument;
    return collective(comm, "ncclBroadcast", send, receive, count, datatype, ncclSum, root);
}

// ---- Controls for the tests ----
EXPORT void fake_nccl_fail_next(const char* call, int result)
{
    std::lock_guard<std::mutex> held(lock);
    fail_next[call] = result;
}

EXPORT void fake_nccl_set_async_error(int result)
{
    std::lock_guard<std::mutex> held(lock);
    pending_async_error = result;
}

EXPORT void fake_nccl_set_wait_ms(long long milliseconds)
{
    std::lock_guard<std::mutex> held(lock);
    wait_ms = milliseconds;
}
