using System.Runtime.InteropServices;
using AlexNetCompiler.Cuda;

namespace AlexNetCompiler.Distributed;

/// <summary>
/// The NCCL functions data-parallel training on GPUs uses, bound to libnccl.so.2 (NCCL 2.x) and loaded when the first
/// is called. Types and values as NCCL's header declares them (NVIDIA/nccl, src/nccl.h.in):
/// <list type="bullet">
/// <item><c>#define NCCL_UNIQUE_ID_BYTES 128</c>, <c>typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId;</c>,
/// passed by value to <c>ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank)</c>;</item>
/// <item><c>ncclResult_t</c>: ncclSuccess 0, ncclUnhandledCudaError 1, ncclSystemError 2, ncclInternalError 3,
/// ncclInvalidArgument 4, ncclInvalidUsage 5, ncclRemoteError 6, ncclInProgress 7, ncclTimeout 8;</item>
/// <item><c>ncclDataType_t</c>: ncclFloat32 = 7 (= ncclFloat); <c>ncclRedOp_t</c>: ncclSum = 0;</item>
/// <item>handles (<c>ncclComm_t</c>, <c>cudaStream_t</c>) are pointers; counts are <c>size_t</c>; enums are 32-bit.</item>
/// </list>
/// </summary>
internal static unsafe partial class NcclApi
{
    internal const int ncclSuccess = 0;
    internal const int ncclInProgress = 7;
    internal const int ncclFloat32 = 7;
    internal const int ncclSum = 0;
    internal const int UniqueIdBytes = 128;

    static NcclApi() => NativeLibraries.EnsureRegistered();

    [LibraryImport(NativeLibraries.Nccl)] internal static partial int ncclGetVersion(out int version);
    [LibraryImport(NativeLibraries.Nccl)] internal static partial int ncclGetUniqueId(out NcclUniqueId uniqueId);
    [LibraryImport(NativeLibraries.Nccl)] internal static partial int ncclCommInitRank(out IntPtr communicator, int ranks, NcclUniqueId uniqueId, int rank);
    [LibraryImport(NativeLibraries.Nccl)] internal static partial int ncclCommDestroy(IntPtr communicator);
    [LibraryImport(NativeLibraries.Nccl)] internal static partial int ncclCommAbort(IntPtr communicator);
    [LibraryImport(NativeLibraries.Nccl)] internal static partial int ncclCommGetAsyncError(IntPtr communicator, out int asyncError);
    [LibraryImport(NativeLibraries.Nccl)] internal static partial IntPtr ncclGetErrorString(int result);

    [LibraryImport(NativeLibraries.Nccl)]
    internal static partial int ncclAllReduce(void* send, void* receive, nuint count, int datatype, int op, IntPtr communicator, IntPtr stream);

    [LibraryImport(NativeLibraries.Nccl)]
    internal static partial int ncclBroadcast(void* send, void* receive, nuint count, int datatype, int root, IntPtr communicator, IntPtr stream);

    /// <summary>Throws an <see cref="NcclException"/> naming the call and NCCL's text for the code.</summary>
    internal static void Check(int result, string call)
    {
        if (result == ncclSuccess) return;
        throw new NcclException($"{call} failed: {ErrorText(result)} (NCCL error {result}, {ResultName(result)}).", call, result);
    }

    internal static string ErrorText(int result)
    {
        IntPtr text = ncclGetErrorString(result);
        return text == IntPtr.Zero ? "unknown error" : Marshal.PtrToStringUTF8(text) ?? "unknown error";
    }

    internal static string ResultName(int result) => result switch
    {
        0 => "ncclSuccess",
        1 => "ncclUnhandledCudaError",
        2 => "ncclSystemError",
        3 => "ncclInternalError",
        4 => "ncclInvalidArgument",
        5 => "ncclInvalidUsage",
        6 => "ncclRemoteError",
        7 => "ncclInProgress",
        8 => "ncclTimeout",
        _ => "unknown result",
    };

    /// <summary>NCCL_VERSION_CODE as ncclGetVersion gives it: major*10000 + minor*100 + patch from 2.9 on, major*1000 + minor*100 + patch before.</summary>
    internal static string VersionText(int code) => code >= 10000
        ? $"{code / 10000}.{code / 100 % 100}.{code % 100}"
        : $"{code / 1000}.{code / 100 % 10}.{code % 100}";
}

/// <summary>
/// NCCL's <c>ncclUniqueId</c>: 128 opaque bytes that rank 0 creates (<see cref="NcclCommunicator.CreateUniqueId"/>)
/// and every rank passes to <c>ncclCommInitRank</c>; they name the rendezvous of one communicator.
/// </summary>
public unsafe struct NcclUniqueId
{
    // A fixed buffer keeps the struct blittable, so [LibraryImport] passes it by value as C does (128 bytes: in memory).
    private fixed byte _bytes[NcclApi.UniqueIdBytes];

    /// <summary>The bytes, for writing to a file or sending to the other ranks.</summary>
    public readonly byte[] ToArray()
    {
        var bytes = new byte[NcclApi.UniqueIdBytes];
        fixed (byte* p = _bytes) new ReadOnlySpan<byte>(p, NcclApi.UniqueIdBytes).CopyTo(bytes);
        return bytes;
    }

    /// <summary>An id from its 128 bytes.</summary>
    public static NcclUniqueId FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != NcclApi.UniqueIdBytes)
            throw new ArgumentException($"An NCCL unique id is {NcclApi.UniqueIdBytes} bytes; got {bytes.Length}.", nameof(bytes));
        NcclUniqueId id = default;
        bytes.CopyTo(new Span<byte>(id._bytes, NcclApi.UniqueIdBytes));
        return id;
    }
}

/// <summary>A failed NCCL call: the message names the call, NCCL's description and the ncclResult_t.</summary>
public sealed class NcclException(string message, string call, int result) : Exception(message)
{
    /// <summary>The NCCL function that failed, e.g. "ncclAllReduce".</summary>
    public string Call { get; } = call;

    /// <summary>The ncclResult_t value.</summary>
    public int Result { get; } = result;
}

/// <summary>NCCL could not be loaded: the message says what to install or which variable to set.</summary>
public sealed class NcclUnavailableException(string message) : Exception(message);
