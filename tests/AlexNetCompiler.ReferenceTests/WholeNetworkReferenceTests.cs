using AlexNetCompiler.Training;
using TorchSharp;
using static AlexNetCompiler.ReferenceTests.TorchInterop;
using static TorchSharp.torch;

namespace AlexNetCompiler.ReferenceTests;

/// <summary>
/// Generated networks against the same networks written by hand in TorchSharp: identical weights (copied by
/// state-dict name), then logits, loss and every parameter gradient of one training pass, then five SGD
/// steps (momentum 0.9, weight decay 5e-4) with losses and weights compared after each. Dropout is off on
/// both sides (dropoutSeed null; torch in eval mode, which only affects dropout in these networks).
/// </summary>
public sealed class WholeNetworkReferenceTests
{
    // Tolerances. Both sides compute in float32 but sum in different orders (blocked GEMM vs libtorch's
    // kernels) over dot products of up to 9216 terms, through eight layers.
    // - One training pass from identical weights: logits |d| <= 1e-4 * max|ref| + 1e-3 * |ref|; loss relative
    //   1e-4; every gradient tensor relative L2 error ||ours - ref|| / ||ref|| <= 1e-4 (measured <= 2e-6) and
    //   element-wise |d| <= 2e-2 * (max|ref| + |ref|) (a wrong formula gives errors of order 1).
    // - Five SGD steps: each step's loss relative 2e-3, and per tensor the accumulated update w_t - w_0
    //   relative L2 <= 5e-2. The looser bound is measured, not guessed: FashionNet's updates agree to 1e-5,
    //   but in AlexNet at step 3 one of conv3's 129,792 ReLU inputs sits within rounding of zero (checked:
    //   torch's own float32 and float64 forwards disagree on that one mask, |x| = 3.8e-7 at scale 5.3), so
    //   the two float32 implementations route one gradient element differently into conv1-conv3 (conv4, conv5
    //   and the classifier stay at 1e-5); momentum carries it forward (updates measured at 1.5e-3 after step 3,
    //   1.6e-2 after step 5; loss 7e-4 after step 5).
    //   The rule itself is pinned by the tight one-pass check above and by SgdReferenceTests; a wrong update
    //   (momentum or rate) changes the update by order 1.
    private const double LogitRelative = 1e-3, LogitScaleAbsolute = 1e-4, OnePassLossRelative = 1e-4;
    private const double GradientRelativeNorm = 1e-4, GradientElementScale = 2e-2;
    private const double StepLossRelative = 2e-3, UpdateRelativeNorm = 5e-2;

    // lr 1e-3 from He init keeps five batch-2 steps in the stable regime: at lr 0.01 AlexNet's loss jumps from
    // 10.9 to 78 at the second step and any rounding difference is amplified without bound. The paper's
    // N(0, 0.01) init is not used here because conv1's gradient is then a near-total cancellation (relative
    // rounding 1e-2 on both sides), which would test float32 cancellation rather than the network.
    private static readonly SgdOptions StepOptions = new(LearningRate: 1e-3f, Momentum: 0.9f, WeightDecay: 5e-4f);

    [Fact]
    public void CanonicalAlexNetMatchesTorch()
    {
        // torch: the 2012 network as torchvision-style Sequential blocks (LRN alpha converted: ours * size).
        var net = new CanonicalAlexNet.AlexNet2012(maxBatch: 2);
        Compare(net, CanonicalTorch(), batch: 2, (x, y, b, sgd) => net.TrainStep(x, y, b, sgd, null));
    }

    [Fact]
    public void FashionMnistNetMatchesTorch()
    {
        var net = new FashionMnist.FashionNet(maxBatch: 4);
        Compare(net, FashionTorch(), batch: 4, (x, y, b, sgd) => net.TrainStep(x, y, b, sgd, null));
    }

    // Against libtorch's float64 path: its float32 path gives conv1's weight gradient (a sum over 4 x 32 x 32 positions
    // of 5x5 windows) 1.6e-3 away from ours in relative L2, the same in every run, while ours agrees with the float64
    // reference within the 1e-4 bound; the tolerances stay those of the float32 networks.
    [Fact]
    public void CifarNetMatchesTorch()
    {
        var net = new FashionMnist.CifarNet(maxBatch: 4);
        Compare(net, CifarTorch(), batch: 4, (x, y, b, sgd) => net.TrainStep(x, y, b, sgd, null), ScalarType.Float64);
    }

    // The reference runs in float64 here: libtorch's float32 CPU path gave this network's conv1 weight gradient
    // differently from one run to the next (now and then NaN, else off by 30% relative L2), also when torch ran before
    // any of our kernels and with every input copied into libtorch's own memory first (clone), so not from ours; ours
    // was the same bits in every run and agrees with libtorch's float64 path to 2.5e-7. The tolerances stay those of
    // the float32 networks.
    [Fact]
    public void NetworkWithAnAdaptiveAveragePoolMatchesTorch()
    {
        var net = new AvgPoolNet(maxBatch: 3);
        Compare(net, AvgPoolTorch(), batch: 3, (x, y, b, sgd) => net.TrainStep(x, y, b, sgd, null), ScalarType.Float64);
    }

    private static nn.Module<Tensor, Tensor> Lrn() => nn.LocalResponseNorm(5, 1e-4 * 5, 0.75, 2.0);

    private static nn.Module<Tensor, Tensor> CanonicalTorch() => nn.Sequential(
        ("features", nn.Sequential(
            ("0", nn.Conv2d(3, 96, 11, stride: 4)), ("1", nn.ReLU()), ("2", Lrn()), ("3", nn.MaxPool2d(3, 2)),
            ("4", nn.Conv2d(96, 256, 5, padding: 2, groups: 2)), ("5", nn.ReLU()), ("6", Lrn()), ("7", nn.MaxPool2d(3, 2)),
            ("8", nn.Conv2d(256, 384, 3, padding: 1)), ("9", nn.ReLU()),
            ("10", nn.Conv2d(384, 384, 3, padding: 1, groups: 2)), ("11", nn.ReLU()),
            ("12", nn.Conv2d(384, 256, 3, padding: 1, groups: 2)), ("13", nn.ReLU()), ("14", nn.MaxPool2d(3, 2)))),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Sequential(
            ("0", nn.Dropout(0.5)), ("1", nn.Linear(256 * 6 * 6, 4096)), ("2", nn.ReLU()),
            ("3", nn.Dropout(0.5)), ("4", nn.Linear(4096, 4096)), ("5", nn.ReLU()),
            ("6", nn.Linear(4096, 1000)))));

    private static nn.Module<Tensor, Tensor> FashionTorch() => nn.Sequential(
        ("features", nn.Sequential(
            ("0", nn.Conv2d(1, 32, 3, padding: 1)), ("1", nn.ReLU()), ("2", Lrn()), ("3", nn.MaxPool2d(3, 2, 1)),
            ("4", nn.Conv2d(32, 64, 3, padding: 1)), ("5", nn.ReLU()), ("6", Lrn()), ("7", nn.MaxPool2d(3, 2, 1)),
            ("8", nn.Conv2d(64, 128, 3, padding: 1)), ("9", nn.ReLU()),
            ("10", nn.Conv2d(128, 128, 3, padding: 1, groups: 2)), ("11", nn.ReLU()),
            ("12", nn.Conv2d(128, 64, 3, padding: 1, groups: 2)), ("13", nn.ReLU()), ("14", nn.MaxPool2d(3, 2)))),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Sequential(
            ("0", nn.Dropout(0.5)), ("1", nn.Linear(64 * 3 * 3, 512)), ("2", nn.ReLU()),
            ("3", nn.Dropout(0.5)), ("4", nn.Linear(512, 256)), ("5", nn.ReLU()),
            ("6", nn.Linear(256, 10)))));

    private static nn.Module<Tensor, Tensor> CifarTorch() => nn.Sequential(
        ("features", nn.Sequential(
            ("0", nn.Conv2d(3, 64, 5, padding: 2)), ("1", nn.ReLU()), ("2", Lrn()), ("3", nn.MaxPool2d(3, 2, 1)),
            ("4", nn.Conv2d(64, 128, 5, padding: 2, groups: 2)), ("5", nn.ReLU()), ("6", Lrn()), ("7", nn.MaxPool2d(3, 2, 1)),
            ("8", nn.Conv2d(128, 192, 3, padding: 1)), ("9", nn.ReLU()),
            ("10", nn.Conv2d(192, 192, 3, padding: 1, groups: 2)), ("11", nn.ReLU()),
            ("12", nn.Conv2d(192, 128, 3, padding: 1, groups: 2)), ("13", nn.ReLU()), ("14", nn.MaxPool2d(3, 2, 1)))),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Sequential(
            ("0", nn.Dropout(0.5)), ("1", nn.Linear(128 * 4 * 4, 1024)), ("2", nn.ReLU()),
            ("3", nn.Dropout(0.5)), ("4", nn.Linear(1024, 512)), ("5", nn.ReLU()),
            ("6", nn.Linear(512, 10)))));

    private static nn.Module<Tensor, Tensor> AvgPoolTorch() => nn.Sequential(
        ("features", nn.Sequential(
            ("0", nn.Conv2d(3, 8, 3, padding: 1)), ("1", nn.ReLU()), ("2", nn.MaxPool2d(3, 2)),
            ("3", nn.Conv2d(8, 12, 3, padding: 1)), ("4", nn.ReLU()))),
        ("avgpool", nn.AdaptiveAvgPool2d([6, 4])),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Sequential(
            ("0", nn.Dropout(0.5)), ("1", nn.Linear(12 * 6 * 4, 32)), ("2", nn.ReLU()),
            ("3", nn.Linear(32, 10)))));

    private delegate float TrainStep(float[] input, int[] labels, int batch, Sgd optimizer);

    private static void Compare(INetwork net, nn.Module<Tensor, Tensor> torchNet, int batch, TrainStep trainStep,
        ScalarType referencePrecision = ScalarType.Float32)
    {
        NetworkDescriptor d = net.Descriptor;
        using var dispose = torch.NewDisposeScope();
        torchNet.eval(); // dropout off, as dropoutSeed null on our side

        // Identical weights: He init on our side (see StepOptions for why not the paper's), copied into torch by
        // state-dict name; strict loading checks that the names match.
        Initializer.Initialize(d, net.Parameters, InitScheme.He, seed: 2012);
        var stateDict = new Dictionary<string, Tensor>();
        foreach (ParameterDescriptor p in d.Parameters)
            stateDict[p.Name] = ToTensor(net.Parameters.AsSpan(p.Offset, p.Length).ToArray(), p.Shape.Select(s => (long)s).ToArray());
        torchNet.load_state_dict(stateDict, strict: true);
        torchNet.to(referencePrecision);
        var torchParameters = torchNet.named_parameters().ToDictionary(np => np.name, np => np.parameter);
        Assert.Equal(d.Parameters.Select(p => p.Name).Order(), torchParameters.Keys.Order());

        long[] inputShape = [batch, d.InputChannels, d.InputHeight, d.InputWidth];
        float[] Input(int step) => RandomArray(batch * d.InputLength, 100 + (ulong)step);
        int[] Labels(int step) => Enumerable.Range(0, batch).Select(n => (n * 31 + step * 7) % d.ClassCount).ToArray();
        Tensor TorchLabels(int step) => torch.tensor(Labels(step).Select(l => (long)l).ToArray(), dtype: ScalarType.Int64);

        // One training pass: logits, loss, every gradient.
        float loss = net.ForwardBackward(Input(0), Labels(0), batch, dropoutSeed: null);
        Tensor torchLogits = torchNet.call(ToTensor(Input(0), inputShape).to(referencePrecision));
        Tensor torchLoss = nn.functional.cross_entropy(torchLogits, TorchLabels(0));
        torchLoss.backward();
        float[] referenceLogits = ToArray(torchLogits);
        double logitScale = referenceLogits.Max(Math.Abs);
        AssertClose(referenceLogits, net.Logits, LogitRelative, LogitScaleAbsolute * logitScale, $"{d.Name} logits");
        AssertLoss(torchLoss.to(ScalarType.Float32).item<float>(), loss, OnePassLossRelative, $"{d.Name} loss");
        foreach (ParameterDescriptor p in d.Parameters)
            AssertGradient(ToArray(torchParameters[p.Name].grad!), net.Gradients.AsSpan(p.Offset, p.Length), $"{d.Name} gradient of {p.Name}");

        // Five SGD steps with the paper's momentum and weight decay.
        SgdOptions options = StepOptions;
        float[] initial = (float[])net.Parameters.Clone();
        var sgd = new Sgd(net.Parameters.Length, options);
        var torchSgd = torch.optim.SGD(torchNet.parameters(), options.LearningRate, momentum: options.Momentum, weight_decay: options.WeightDecay);
        for (int step = 1; step <= 5; step++)
        {
            float ours = trainStep(Input(step), Labels(step), batch, sgd);
            torchSgd.zero_grad();
            Tensor stepLoss = nn.functional.cross_entropy(torchNet.call(ToTensor(Input(step), inputShape).to(referencePrecision)), TorchLabels(step));
            stepLoss.backward();
            torchSgd.step();
            AssertLoss(stepLoss.to(ScalarType.Float32).item<float>(), ours, StepLossRelative, $"{d.Name} loss at step {step}");
            foreach (ParameterDescriptor p in d.Parameters)
            {
                float[] referenceUpdate = ToArray(torchParameters[p.Name]);
                var update = new float[p.Length];
                for (int i = 0; i < p.Length; i++)
                {
                    referenceUpdate[i] -= initial[p.Offset + i];
                    update[i] = net.Parameters[p.Offset + i] - initial[p.Offset + i];
                }
                double error = RelativeL2(referenceUpdate, update);
                Assert.True(error <= UpdateRelativeNorm, $"{d.Name} {p.Name} after step {step}: update relative L2 error {error:G3} > {UpdateRelativeNorm}");
            }
        }
    }

    private static double SumOfSquares(float[] values) => values.Sum(v => (double)v * v);

    private static void AssertLoss(float expected, float actual, double relative, string what) =>
        Assert.True(Math.Abs(expected - actual) <= relative * Math.Abs(expected) + 1e-6, $"{what}: {actual}, torch {expected}");

    /// <summary>||actual - expected|| / ||expected||, summed in double.</summary>
    private static double RelativeL2(float[] expected, ReadOnlySpan<float> actual)
    {
        double differenceSquares = 0, referenceSquares = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            differenceSquares += Math.Pow((double)actual[i] - expected[i], 2);
            referenceSquares += (double)expected[i] * expected[i];
        }
        return Math.Sqrt(differenceSquares / Math.Max(referenceSquares, 1e-300));
    }

    private static void AssertGradient(float[] expected, ReadOnlySpan<float> actual, string what)
    {
        double relative = RelativeL2(expected, actual);
        Assert.True(relative <= GradientRelativeNorm, $"{what}: relative L2 error {relative:G3} > {GradientRelativeNorm}");
        double scale = expected.Max(Math.Abs);
        AssertClose(expected, actual, GradientElementScale, GradientElementScale * scale, what);
        Assert.True(SumOfSquares(expected) > 0, $"{what}: the reference gradient is all zero, the comparison would prove nothing");
    }
}
