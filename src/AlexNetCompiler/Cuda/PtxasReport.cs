using System.Globalization;
using System.Text.RegularExpressions;

namespace AlexNetCompiler.Cuda;

/// <summary>Per-kernel resource use reported by ptxas (NVRTC option --ptxas-options=-v, CUBIN targets only).</summary>
public sealed record KernelResources(string Kernel, int Registers, int SpillStoreBytes, int SpillLoadBytes, int StackFrameBytes);

public static partial class PtxasReport
{
    /// <summary>Parses the "ptxas info" lines of an NVRTC log into one entry per compiled kernel.</summary>
    public static IReadOnlyList<KernelResources> Parse(string log)
    {
        var result = new List<KernelResources>();
        string? kernel = null;
        int registers = -1, spillStores = 0, spillLoads = 0, stack = 0;
        void Flush()
        {
            if (kernel is not null && registers >= 0) result.Add(new KernelResources(kernel, registers, spillStores, spillLoads, stack));
            kernel = null;
            registers = -1;
            spillStores = spillLoads = stack = 0;
        }
        foreach (string line in log.Split('\n'))
        {
            Match m;
            if ((m = EntryPattern().Match(line)).Success)
            {
                Flush();
                kernel = m.Groups[1].Value;
            }
            else if ((m = SpillPattern().Match(line)).Success)
            {
                stack = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                spillStores = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
                spillLoads = int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture);
            }
            else if ((m = RegistersPattern().Match(line)).Success)
            {
                registers = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            }
        }
        Flush();
        return result;
    }

    [GeneratedRegex(@"Compiling entry function '([^']+)'")]
    private static partial Regex EntryPattern();

    [GeneratedRegex(@"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")]
    private static partial Regex SpillPattern();

    [GeneratedRegex(@"Used (\d+) registers")]
    private static partial Regex RegistersPattern();
}
