namespace AlexNetCompiler.Cuda;

/// <summary>
/// A failed CUDA driver or NVRTC call. The message names the call, the error code's name and description
/// and, for launches, the kernel.
/// </summary>
public sealed class CudaException : Exception
{
    public CudaException(string message, string call, int errorCode, string? kernel = null, Exception? inner = null)
        : base(message, inner)
    {
        Call = call;
        ErrorCode = errorCode;
        Kernel = kernel;
    }

    /// <summary>The API function that failed, e.g. "cuLaunchKernel".</summary>
    public string Call { get; }

    /// <summary>The CUresult or nvrtcResult value (0 when the failure is not an API error code).</summary>
    public int ErrorCode { get; }

    /// <summary>The kernel being launched or looked up, when there is one.</summary>
    public string? Kernel { get; }
}

/// <summary>The CUDA driver or NVRTC library could not be found or has no usable device.</summary>
public sealed class CudaUnavailableException : Exception
{
    public CudaUnavailableException(string message, Exception? inner = null) : base(message, inner) { }
}
