using AlexNetCompiler.Cpu;
using AlexNetCompiler.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace AlexNetCompiler.Bench;

/// <summary>One benchmark network: the generated class, its TorchSharp twin, and its input size.</summary>
internal sealed record BenchNetwork(string Key, string Title, NetworkDescriptor Descriptor, Func<int, CpuContext, INetwork> CreateOurs, Func<nn.Module<Tensor, Tensor>> CreateTorch)
{
    public static readonly BenchNetwork[] All =
    [
        new("canonical", "Canonical AlexNet (227, LRN, groups)", CanonicalAlexNet.AlexNet2012.Model,
            (batch, ctx) => new CanonicalAlexNet.AlexNet2012(batch, ctx),
            TorchModels.Canonical),
        new("torchvision", "torchvision AlexNet (224)", TorchvisionAlexNet.TorchvisionAlexNet.Model,
            (batch, ctx) => new TorchvisionAlexNet.TorchvisionAlexNet(batch, ctx),
            TorchModels.Torchvision),
        new("fashion", "FashionNet (the main job, 1x28x28)", FashionMnist.FashionNet.Model,
            (batch, ctx) => new FashionMnist.FashionNet(batch, ctx),
            TorchModels.Fashion),
    ];

    public static BenchNetwork Find(string key) =>
        All.FirstOrDefault(n => n.Key == key) ?? throw new ArgumentException($"Unknown network '{key}'. Networks: {string.Join(", ", All.Select(n => n.Key))}.");
}

/// <summary>Shared set-up so the timing run and the memory probes do exactly the same work.</summary>
internal static class BenchSetup
{
    public const ulong Seed = 2012;
    /// <summary>
    /// The timed steps train on one batch over and over: at the paper's learning rate of 0.01 torchvision's AlexNet at
    /// batch 16 diverged to a NaN loss by the seventh step, and a step with a non-finite loss updates nothing (the
    /// cell child refuses to report such a run). At 0.001 every measured network stays finite.
    /// </summary>
    public static readonly SgdOptions Sgd = new(LearningRate: 0.001f, Momentum: 0.9f, WeightDecay: 5e-4f);

    /// <summary>Environment variable that makes the project's networks use im2col + GEMM for every convolution: <c>im2col</c>.</summary>
    public const string ConvVariable = "ALEXNET_BENCH_CONV";

    /// <summary>
    /// The project's context: Auto's convolution choice, or im2col everywhere when <see cref="ConvVariable"/> says so
    /// (set it for the whole bench to compare a network with and without Winograd; the child processes inherit it).
    /// </summary>
    public static CpuContext Context(int threads) => Environment.GetEnvironmentVariable(ConvVariable) switch
    {
        null or "" or "auto" => new CpuContext(threads),
        "im2col" => new CpuContext(threads) { Conv2dAlgorithm = Conv2dAlgorithm.Im2Col },
        string other => throw new ArgumentException($"{ConvVariable}={other}: use auto or im2col."),
    };

    public static float[] Images(NetworkDescriptor d, int batch)
    {
        var rng = new SeededRandom(Seed + (ulong)batch);
        var x = new float[batch * d.InputLength];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextGaussian(0f, 1f);
        return x;
    }

    public static int[] Labels(NetworkDescriptor d, int batch)
    {
        var labels = new int[batch];
        for (int i = 0; i < batch; i++) labels[i] = (i * 379 + 11) % d.ClassCount;
        return labels;
    }

    /// <summary>
    /// He initialisation: activations keep their scale through the layers. (The paper's N(0, 0.01) shrinks them
    /// towards float denormals after a few layers, which would time the FPU's slow path instead of the code.)
    /// </summary>
    public static INetwork CreateOurs(BenchNetwork net, int batch, CpuContext ctx)
    {
        INetwork network = net.CreateOurs(batch, ctx);
        Initializer.Initialize(net.Descriptor, network.Parameters, InitScheme.He, Seed);
        return network;
    }

    /// <summary>The same weights as <see cref="CreateOurs"/>, without building the network.</summary>
    public static float[] Parameters(NetworkDescriptor d)
    {
        var parameters = new float[d.ParameterCount];
        Initializer.Initialize(d, parameters, InitScheme.He, Seed);
        return parameters;
    }

    public static nn.Module<Tensor, Tensor> CreateTorch(BenchNetwork net, float[] parameters)
    {
        nn.Module<Tensor, Tensor> module = net.CreateTorch();
        TorchModels.LoadParameters(module, net.Descriptor, parameters);
        return module;
    }

    public static void TorchTrainStep(nn.Module<Tensor, Tensor> module, optim.Optimizer optimizer, Tensor x, Tensor y)
    {
        using var scope = torch.NewDisposeScope();
        module.train();
        optimizer.zero_grad();
        Tensor loss = nn.functional.cross_entropy(module.call(x), y);
        loss.backward();
        optimizer.step();
    }

    public static void TorchForward(nn.Module<Tensor, Tensor> module, Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        module.eval();
        module.call(x);
    }

    public static optim.Optimizer TorchSgd(nn.Module<Tensor, Tensor> module) =>
        torch.optim.SGD(module.parameters(), Sgd.LearningRate, Sgd.Momentum, 0, Sgd.WeightDecay, false);

    public static Tensor TorchImages(NetworkDescriptor d, float[] images, int batch) =>
        torch.tensor(images, [batch, d.InputChannels, d.InputHeight, d.InputWidth]);

    public static Tensor TorchLabels(int[] labels) => torch.tensor(labels.Select(l => (long)l).ToArray());
}
