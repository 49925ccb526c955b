using System.Runtime.InteropServices;
using AlexNetCompiler.Cuda;

namespace AlexNetCompiler.Distributed;

/// <summary>
/// The MPI functions data-parallel training uses, bound to Open MPI's libmpi.so.40 (MPI 3.1; Open MPI 4.1 here). Open
/// MPI's handles (MPI_Comm, MPI_Datatype, MPI_Op, MPI_Request) are pointers, and the predefined ones are the addresses
/// of global objects in the library (mpi.h: <c>#define MPI_COMM_WORLD OMPI_PREDEFINED_GLOBAL(MPI_Comm,
/// ompi_mpi_comm_world)</c>), which <see cref="Handles"/> looks up by name. Another MPI (MPICH's handles are integers)
/// would need other bindings.
/// </summary>
internal static unsafe partial class MpiApi
{
    internal const int MPI_SUCCESS = 0;
    /// <summary>mpi.h: the thread-support levels, in order SINGLE, FUNNELED, SERIALIZED, MULTIPLE.</summary>
    internal const int MPI_THREAD_SERIALIZED = 2;
    /// <summary>mpi.h: <c>#define MPI_IN_PLACE ((void *) 1)</c>.</summary>
    internal static readonly IntPtr MPI_IN_PLACE = 1;
    internal const int MPI_MAX_ERROR_STRING = 256;

    static MpiApi() => NativeLibraries.EnsureRegistered();

    [LibraryImport(NativeLibraries.Mpi)] internal static partial int MPI_Init_thread(int* argc, byte*** argv, int required, out int provided);
    [LibraryImport(NativeLibraries.Mpi)] internal static partial int MPI_Initialized(out int flag);
    [LibraryImport(NativeLibraries.Mpi)] internal static partial int MPI_Finalized(out int flag);
    [LibraryImport(NativeLibraries.Mpi)] internal static partial int MPI_Finalize();
    [LibraryImport(NativeLibraries.Mpi)] internal static partial int MPI_Abort(IntPtr communicator, int errorCode);
    [LibraryImport(NativeLibraries.Mpi)] internal static partial int MPI_Comm_rank(IntPtr communicator, out int rank);
    [LibraryImport(NativeLibraries.Mpi)] internal static partial int MPI_Comm_size(IntPtr communicator, out int size);
    [LibraryImport(NativeLibraries.Mpi)] internal static partial int MPI_Get_library_version(byte* version, out int length);
    [LibraryImport(NativeLibraries.Mpi)] internal static partial int MPI_Error_string(int error, byte* text, out int length);

    [LibraryImport(NativeLibraries.Mpi)]
    internal static partial int MPI_Iallreduce(void* send, void* receive, int count, IntPtr datatype, IntPtr op, IntPtr communicator, out IntPtr request);

    [LibraryImport(NativeLibraries.Mpi)]
    internal static partial int MPI_Ibcast(void* buffer, int count, IntPtr datatype, int root, IntPtr communicator, out IntPtr request);

    /// <summary>status may be null (MPI_STATUS_IGNORE).</summary>
    [LibraryImport(NativeLibraries.Mpi)] internal static partial int MPI_Test(ref IntPtr request, out int flag, void* status);

    /// <summary>The predefined handles, resolved once from the library's exported globals.</summary>
    internal static class Handles
    {
        internal static readonly IntPtr CommWorld = Export("ompi_mpi_comm_world");
        internal static readonly IntPtr Float = Export("ompi_mpi_float");
        internal static readonly IntPtr Sum = Export("ompi_mpi_op_sum");

        private static IntPtr Export(string name)
        {
            if (!NativeLibraries.TryLoad(NativeLibraries.Mpi, out IntPtr library, out string? error))
                throw new MpiUnavailableException(error!);
            if (!NativeLibrary.TryGetExport(library, name, out IntPtr address))
                throw new MpiUnavailableException($"The loaded libmpi has no symbol '{name}': it is not Open MPI, whose handle layout these bindings assume.");
            return address;
        }
    }

    /// <summary>Throws an InvalidOperationException naming the call and MPI's own text for the error code.</summary>
    internal static void Check(int result, string call)
    {
        if (result == MPI_SUCCESS) return;
        throw new InvalidOperationException($"{call} failed: {ErrorText(result)} (MPI error {result}).");
    }

    internal static string ErrorText(int error)
    {
        byte* text = stackalloc byte[MPI_MAX_ERROR_STRING];
        return MPI_Error_string(error, text, out int length) == MPI_SUCCESS
            ? System.Text.Encoding.UTF8.GetString(text, Math.Clamp(length, 0, MPI_MAX_ERROR_STRING))
            : "unknown error";
    }
}

/// <summary>MPI could not be loaded or started: the message says what is missing.</summary>
public sealed class MpiUnavailableException(string message) : Exception(message);
