using System.Globalization;
using AlexNetCompiler.Bench;

// Usage (Release):
//   dotnet run -c Release --project bench/AlexNetCompiler.Bench -- bench   [--threads N] [--batches 1,16] [--nets canonical,torchvision,fashion] [--reps R>=5] [--rounds K] [--seed S] [--no-memory]
//     (against TorchSharp, and for the forward pass ONNX Runtime on the network's own ONNX export; every measurement in
//     its own process, in an order shuffled by the seed; see NetworkBench)
//   dotnet run -c Release --project bench/AlexNetCompiler.Bench -- kernels [--threads N] [--batch N] [--net canonical|torchvision|fashion]
//   dotnet run -c Release --project bench/AlexNetCompiler.Bench -- conv3x3 [--threads N] [--batch N] [--reps R]
//     (conv3-conv5 of both AlexNets with im2col + GEMM and with Winograd F(4x4, 3x3) forced)
//   dotnet run -c Release --project bench/AlexNetCompiler.Bench -- conv-pairs [--threads N] [--batch N] [--pairs P]
//     (conv2 of both AlexNets, im2col + GEMM against Winograd F(2x2, 5x5), in alternating pairs of single calls)
//   dotnet run -c Release --project bench/AlexNetCompiler.Bench -- dense   [--threads N] [--batch N] [--rounds R]
//     (AlexNet's three dense layers: forward, backward, backward with the SGD update, the three calls in turn each round)
//   dotnet run -c Release --project bench/AlexNetCompiler.Bench -- ort-layers [--threads N] [--batches 1,16] [--nets torchvision] [--runs 50]
//     (ONNX Runtime's own profile of its forward pass, node by node, to set beside `kernels`)
//   dotnet run -c Release --project bench/AlexNetCompiler.Bench -- ours    [--threads N] [--batches 1,16] [--nets canonical,torchvision]
//   dotnet run -c Release --project bench/AlexNetCompiler.Bench -- gemm    [--threads N]
//   dotnet run -c Release --project bench/AlexNetCompiler.Bench -- micro
//   mpirun -np N dotnet bench/AlexNetCompiler.Bench/bin/Release/net10.0/AlexNetCompiler.Bench.dll distributed [--threads T] [--batch 64] [--nets fashion] [--steps 20]
//   mpirun -np N dotnet .../AlexNetCompiler.Bench.dll allreduce [--floats 632778,4194304,60965224] [--reps 5]
//     (data-parallel training over Open MPI, and its all-reduce; docs/distributed.md)
//   dotnet run -c Release --project bench/AlexNetCompiler.Bench -- loader  [--threads N] [--images 3000] [--batch 64] [--steps 3]
//     (image-folder loader alone, cold decode and from the cache, against AlexNet2012's training step)
try
{
    return Run(args);
}
catch (ArgumentException e)
{
    // A bad option or name: the message says which; a stack trace would not help.
    Console.Error.WriteLine($"bench: {e.Message}");
    return 2;
}
catch (BenchChildFailedException e)
{
    // A measurement's own process failed (a training loss that went non-finite, say): its message says why.
    Console.Error.WriteLine($"bench: {e.Message}");
    return 1;
}

static int Run(string[] args)
{
    string command = args.Length > 0 ? args[0] : "bench";
    int threads = IntOption(args, "--threads", Environment.ProcessorCount);
    switch (command)
    {
        case "bench":
            int[] batches = ListOption(args, "--batches", "1,16").Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            string[] nets = ListOption(args, "--nets", "canonical,torchvision");
            int seed = args.Contains("--seed") ? IntOption(args, "--seed", 1) : Random.Shared.Next(1, 1_000_000);
            return NetworkBench.Run(threads, batches, nets, IntOption(args, "--reps", 7), IntOption(args, "--rounds", 1), !args.Contains("--no-memory"), seed);
        case "cell":
            return NetworkBench.CellChild(args[1], args[2], args[3], int.Parse(args[4], CultureInfo.InvariantCulture),
                int.Parse(args[5], CultureInfo.InvariantCulture), int.Parse(args[6], CultureInfo.InvariantCulture));
        case "ceiling":
            return NetworkBench.CeilingChild(int.Parse(args[1], CultureInfo.InvariantCulture));
        case "ours":
            // The project alone: forward and training step per network and batch (1 thread: CPU time).
            foreach (string key in ListOption(args, "--nets", "canonical,torchvision"))
                foreach (int b in ListOption(args, "--batches", "1,16").Select(s => int.Parse(s, CultureInfo.InvariantCulture)))
                    KernelBench.RunNetwork(BenchNetwork.Find(key), b, threads);
            return 0;
        case "memory-probe":
            return NetworkBench.MemoryProbe(args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture), int.Parse(args[4], CultureInfo.InvariantCulture));
        case "kernels":
            KernelBench.RunGemm(threads);
            KernelBench.RunLayers(threads, IntOption(args, "--batch", 16), ListOption(args, "--net", "canonical")[0]);
            return 0;
        case "conv3x3":
            KernelBench.RunConvAlgorithms(threads, IntOption(args, "--batch", 16), IntOption(args, "--reps", 15));
            return 0;
        case "dense":
            KernelBench.RunDense(threads, IntOption(args, "--batch", 16), IntOption(args, "--rounds", 25));
            return 0;
        case "conv-pairs":
            KernelBench.RunConvPairs(threads, IntOption(args, "--batch", 16), IntOption(args, "--pairs", 60));
            return 0;
        case "gemm":
            KernelBench.RunGemm(threads);
            return 0;
        case "distributed":
            foreach (string key in ListOption(args, "--nets", "fashion"))
                DistributedBench.Train(BenchNetwork.Find(key), IntOption(args, "--batch", 64), threads, IntOption(args, "--steps", 20));
            return 0;
        case "allreduce":
            return DistributedBench.AllReduce(ListOption(args, "--floats", "632778,4194304,60965224").Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(),
                IntOption(args, "--reps", 5));
        case "ort-layers":
            foreach (string key in ListOption(args, "--nets", "torchvision"))
                foreach (int b in ListOption(args, "--batches", "1,16").Select(s => int.Parse(s, CultureInfo.InvariantCulture)))
                    NetworkBench.OrtLayers(key, b, threads, IntOption(args, "--runs", 50));
            return 0;
        case "micro":
            MicroKernelBench.Run();
            return 0;
        case "loader":
            return LoaderBench.Run(IntOption(args, "--images", 3000), threads, IntOption(args, "--batch", 64), IntOption(args, "--steps", 3));
        default:
            Console.Error.WriteLine($"Unknown command '{command}'. Commands: bench, ours, kernels, ort-layers, conv3x3, conv-pairs, dense, gemm, micro, distributed, allreduce, loader.");
            return 2;
    }
}

static int IntOption(string[] args, string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    if (i < 0) return fallback;
    if (i + 1 >= args.Length || !int.TryParse(args[i + 1], out int value) || value < 1)
        throw new ArgumentException($"Option {name} needs a positive integer.");
    return value;
}

static string[] ListOption(string[] args, string name, string fallback)
{
    int i = Array.IndexOf(args, name);
    string value = i < 0 ? fallback : i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"Option {name} needs a value.");
    return value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
