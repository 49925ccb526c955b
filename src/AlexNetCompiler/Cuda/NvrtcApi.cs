using System.Runtime.InteropServices;

namespace AlexNetCompiler.Cuda;

/// <summary>The NVRTC functions the runtime uses (nvrtc.h; CUBIN calls need NVRTC 11.1 or newer).</summary>
internal static unsafe partial class NvrtcApi
{
    static NvrtcApi() => NativeLibraries.EnsureRegistered();

    [LibraryImport(NativeLibraries.Nvrtc)] internal static partial int nvrtcVersion(out int major, out int minor);
    [LibraryImport(NativeLibraries.Nvrtc)] internal static partial IntPtr nvrtcGetErrorString(int result);

    [LibraryImport(NativeLibraries.Nvrtc)]
    internal static partial int nvrtcCreateProgram(out IntPtr program, byte* source, byte* name, int headerCount, byte** headers, byte** includeNames);
    [LibraryImport(NativeLibraries.Nvrtc)] internal static partial int nvrtcDestroyProgram(ref IntPtr program);
    [LibraryImport(NativeLibraries.Nvrtc)] internal static partial int nvrtcCompileProgram(IntPtr program, int optionCount, byte** options);
    [LibraryImport(NativeLibraries.Nvrtc)] internal static partial int nvrtcGetProgramLogSize(IntPtr program, out nuint size);
    [LibraryImport(NativeLibraries.Nvrtc)] internal static partial int nvrtcGetProgramLog(IntPtr program, byte* log);
    [LibraryImport(NativeLibraries.Nvrtc)] internal static partial int nvrtcGetPTXSize(IntPtr program, out nuint size);
    [LibraryImport(NativeLibraries.Nvrtc)] internal static partial int nvrtcGetPTX(IntPtr program, byte* ptx);
    [LibraryImport(NativeLibraries.Nvrtc)] internal static partial int nvrtcGetCUBINSize(IntPtr program, out nuint size);
    [LibraryImport(NativeLibraries.Nvrtc)] internal static partial int nvrtcGetCUBIN(IntPtr program, byte* cubin);

    internal static void Check(int result, string call)
    {
        if (result == 0) return;
        throw new CudaException($"{call} failed: {ErrorText(result)}", call, result);
    }

    internal static string ErrorText(int result)
    {
        IntPtr p = nvrtcGetErrorString(result);
        return p == IntPtr.Zero ? "NVRTC_ERROR_" + result : Marshal.PtrToStringUTF8(p) ?? "NVRTC_ERROR_" + result;
    }
}
