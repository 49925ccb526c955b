namespace AlexNetCompiler.Tests.App;

/// <summary>
/// A stand-in network for testing the trainer's bookkeeping (divergence, schedules) without numerics:
/// ForwardBackward returns scripted losses and zero gradients; Forward predicts class 0 for everything.
/// </summary>
public sealed class ScriptedNetwork : INetwork
{
    private readonly Func<long, float> _lossAtCall;
    private readonly float[] _logits;
    private int _lastBatch;
    private long _calls;

    public ScriptedNetwork(int maxBatch, Func<long, float> lossAtCall)
    {
        MaxBatch = maxBatch;
        _lossAtCall = lossAtCall;
        Parameters = new float[Descriptor.ParameterCount];
        Gradients = new float[Descriptor.ParameterCount];
        _logits = new float[maxBatch * 10];
    }

    public static readonly NetworkDescriptor Model = new(
        "Scripted", 1, 28, 28, 10, 7850,
        [new LayerDescriptor(0, "classifier.0", "Fc", LayerKind.Dense, [1, 28, 28], [10], 7850, "784 -> 10", new DenseHyperparameters(Bias: true))],
        [
            new ParameterDescriptor("classifier.0.weight", [10, 784], 0, 7840, ParameterRole.Weight, 784, 0f),
            new ParameterDescriptor("classifier.0.bias", [10], 7840, 10, ParameterRole.Bias, 784, 0f),
        ],
        new MemoryPlan(7850 * 4, 7850 * 8, 40, 80, 0, 784));

    public NetworkDescriptor Descriptor => Model;
    public int MaxBatch { get; }
    public float[] Parameters { get; }
    public float[] Gradients { get; }
    public ReadOnlySpan<float> Logits => _logits.AsSpan(0, _lastBatch * 10);

    public void Forward(ReadOnlySpan<float> input, int batch, Span<float> logits)
    {
        _lastBatch = batch;
        Array.Clear(_logits);
        for (int n = 0; n < batch; n++) _logits[n * 10] = 1f;
        _logits.AsSpan(0, batch * 10).CopyTo(logits);
    }

    public float ForwardBackward(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, ulong? dropoutSeed)
    {
        Forward(input, batch, _logits);
        Array.Clear(Gradients);
        return _lossAtCall(_calls++);
    }
}
