using AlexNetCompiler;
using AlexNetCompiler.Training;

namespace GpuCheck;

/// <summary>
/// What the CPU backend computes for one network and batch, once, for every GPU mode and tile to be compared with:
/// logits, loss and gradients (dropout on), then five SGD steps (torch.optim.SGD semantics with the paper's
/// momentum and weight decay) from the same start, each with its own dropout seed. The GPU gets the CPU's
/// parameters again before every step, while each side keeps its own momentum buffer and step count: left to run
/// freely, the two would drift apart through discrete events (a ReLU or a max pool deciding differently on a 1e-6
/// difference moves whole gradient elements; a fraction f of them gives a relative error near sqrt(f), 4e-3 after
/// 5 free steps of FashionNet at batch 64 in FP32) and the comparison would measure that drift, not the kernels.
/// Judged: the worst step's parameter change, then the momentum buffers after the fifth step. The learning rate is
/// a tenth of the paper's: at 0.01 five steps on one random batch of AlexNet blow the loss up (4.7 to 50 at step 3).
/// The inputs (<see cref="Inputs"/>) are also what eng/pytorch_reference.py gets, to measure PyTorch's own TF32 error.
/// </summary>
internal sealed record CpuReference(
    int Batch, float[] Input, int[] Labels, float[] InitialParameters, float[] Logits, float Loss, float[] Gradients,
    float[][] ParametersBeforeStep, float[][] StepDeltas, float[] StepLosses, float[] Velocity)
{
    public const int Steps = 5;
    public const ulong DropoutSeed = 42;
    public const ulong InitSeed = 2012;
    public static readonly SgdOptions Sgd = new(LearningRate: 0.001f, Momentum: 0.9f, WeightDecay: 5e-4f);
    public static ulong StepSeed(int step) => 100 + (ulong)step;

    /// <summary>The check's starting parameters, input batch and labels for a network at a batch size.</summary>
    public static (float[] Parameters, float[] Input, int[] Labels) Inputs(CheckedNetwork net, int batch)
    {
        var parameters = new float[net.Model.ParameterCount];
        Initializer.Initialize(net.Model, parameters, net.Init, seed: InitSeed);
        return (parameters, RandomInput(batch * net.Plan.InputLength, 7), RandomLabels(batch, net.Plan.ClassCount, 7));
    }

    public static CpuReference Compute(CheckedNetwork net, int batch)
    {
        var (initial, input, labels) = Inputs(net, batch);
        INetwork cpu = net.Create(batch);
        initial.CopyTo(cpu.Parameters.AsSpan());

        var logits = new float[batch * net.Plan.ClassCount];
        cpu.Forward(input, batch, logits);
        float loss = cpu.ForwardBackward(input, labels, batch, DropoutSeed);
        float[] gradients = (float[])cpu.Gradients.Clone();

        var sgd = new Sgd((int)net.Plan.ParameterCount, Sgd);
        var before = new float[Steps][];
        var deltas = new float[Steps][];
        var losses = new float[Steps];
        for (int step = 0; step < Steps; step++)
        {
            before[step] = (float[])cpu.Parameters.Clone();
            losses[step] = cpu.ForwardBackward(input, labels, batch, StepSeed(step));
            sgd.Step(cpu.Parameters, cpu.Gradients);
            deltas[step] = new float[net.Plan.ParameterCount];
            for (int i = 0; i < deltas[step].Length; i++) deltas[step][i] = cpu.Parameters[i] - before[step][i];
        }
        return new CpuReference(batch, input, labels, initial, logits, loss, gradients, before, deltas, losses, sgd.Velocity.ToArray());
    }

    public static float[] RandomInput(int count, ulong seed)
    {
        var rng = new Random((int)seed);
        var x = new float[count];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    public static int[] RandomLabels(int batch, int classes, ulong seed)
    {
        var rng = new Random((int)seed + 1);
        return Enumerable.Range(0, batch).Select(_ => rng.Next(classes)).ToArray();
    }
}
