using AlexNetCompiler.Bench;

// Usage:
//   dotnet run -c Release --project bench/AlexNetCompiler.Bench -- kernels [--threads N] [--batch N]
//   dotnet run -c Release --project bench/AlexNetCompiler.Bench -- gemm [--threads N]
string command = args.Length > 0 ? args[0] : "kernels";
int threads = IntOption(args, "--threads", Environment.ProcessorCount);
int batch = IntOption(args, "--batch", 16);
switch (command)
{
    case "micro":
        MicroKernelBench.Run();
        return 0;
    case "gemm":
        KernelBench.RunGemm(threads);
        return 0;
    case "kernels":
        KernelBench.RunGemm(threads);
        KernelBench.RunLayers(threads, batch);
        return 0;
    default:
        Console.Error.WriteLine($"Unknown command '{command}'. Commands: kernels, gemm.");
        return 2;
}

static int IntOption(string[] args, string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    if (i < 0) return fallback;
    if (i + 1 >= args.Length || !int.TryParse(args[i + 1], out int value) || value < 1)
        throw new ArgumentException($"Option {name} needs a positive integer.");
    return value;
}
