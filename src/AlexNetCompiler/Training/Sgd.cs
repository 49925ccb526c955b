using System.Runtime.Intrinsics;
using AlexNetCompiler.Cpu;

namespace AlexNetCompiler.Training;

/// <summary>Which SGD update rule to apply.</summary>
public enum SgdVariant
{
    /// <summary>
    /// torch.optim.SGD (dampening 0, nesterov off), for parity with PyTorch:
    /// g = grad + wd * p;  v = mu * v + g (v = g on the first step);  p = p - lr * v.
    /// </summary>
    PyTorch,

    /// <summary>
    /// Krizhevsky, Sutskever and Hinton 2012, "ImageNet Classification with Deep Convolutional Neural
    /// Networks", section 5: v = mu * v - wd * lr * p - lr * grad;  p = p + v (v starts at 0).
    /// With a constant learning rate both rules give the same parameters (the paper's v is -lr times torch's);
    /// they differ after the learning rate changes, because the paper's velocity carries the old rate.
    /// <see cref="Sgd.Velocity"/> holds the paper's v under this variant.
    /// </summary>
    Paper,
}

/// <param name="LearningRate">Initial step size (the paper: 0.01, divided by 10 on plateaus).</param>
/// <param name="Momentum">mu (the paper: 0.9).</param>
/// <param name="WeightDecay">wd, applied to every parameter including biases, as torch does by default (the paper: 5e-4).</param>
public sealed record SgdOptions(float LearningRate = 0.01f, float Momentum = 0.9f, float WeightDecay = 5e-4f, SgdVariant Variant = SgdVariant.PyTorch);

/// <summary>
/// Stochastic gradient descent with momentum and weight decay over one flat parameter buffer.
/// The update is vectorised and split over threads for large buffers (AlexNet has 61M parameters,
/// so a step is memory bound and both cores' bandwidth helps). Element-wise, so the result does not
/// depend on the thread count. Runs on a CpuContext's threads, so a step allocates nothing.
/// </summary>
public sealed unsafe class Sgd
{
    private readonly CpuContext _cpu;

    /// <param name="cpu">Threads for the update; <see cref="CpuContext.Default"/> when null. Pass the network's context.</param>
    public Sgd(int parameterCount, SgdOptions options, CpuContext? cpu = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(parameterCount);
        ArgumentNullException.ThrowIfNull(options);
        if (!(options.LearningRate >= 0) || !(options.Momentum >= 0) || !(options.WeightDecay >= 0))
            throw new ArgumentOutOfRangeException(nameof(options), options, "SGD: learning rate, momentum and weight decay must be non-negative numbers.");
        Options = options;
        LearningRate = options.LearningRate;
        Velocity = new float[parameterCount];
        _cpu = cpu ?? CpuContext.Default;
    }

    public SgdOptions Options { get; }

    /// <summary>The rate the next step uses; schedules change it between steps.</summary>
    public float LearningRate { get; set; }

    /// <summary>Momentum buffer, same layout as the parameters.</summary>
    public float[] Velocity { get; }

    /// <summary>Steps taken so far. While 0, the PyTorch rule sets the velocity to the gradient (torch's empty momentum buffer).</summary>
    public long StepCount { get; set; }

    /// <summary>One update of <paramref name="parameters"/> from <paramref name="gradients"/> (same length as the velocity).</summary>
    public void Step(Span<float> parameters, ReadOnlySpan<float> gradients) => Step(parameters, gradients, updatedInBackward: default);

    /// <summary>
    /// One update of <paramref name="parameters"/> from <paramref name="gradients"/>, except the slices in
    /// <paramref name="updatedInBackward"/>: the backward pass of this step already applied this step's update to them
    /// (<see cref="UpdateOf"/>), and their gradients were not stored. Ends the step.
    /// </summary>
    /// <param name="updatedInBackward">Disjoint slices in increasing order.</param>
    public void Step(Span<float> parameters, ReadOnlySpan<float> gradients, ReadOnlySpan<Range> updatedInBackward)
    {
        if (parameters.Length != Velocity.Length || gradients.Length != Velocity.Length)
            throw new ArgumentException($"SGD: parameters ({parameters.Length}) and gradients ({gradients.Length}) must both have {Velocity.Length} floats.");
        // Every slice is checked before anything is updated, so a refused call changes nothing.
        int end = 0;
        foreach (Range skipped in updatedInBackward)
        {
            (int offset, int length) = CheckedSlice(skipped, parameters.Length);
            if (offset < end)
                throw new ArgumentException($"SGD: the slices updated in backward must be disjoint and in increasing order ({skipped} starts before {end}).", nameof(updatedInBackward));
            end = offset + length;
        }
        int start = 0;
        foreach (Range skipped in updatedInBackward)
        {
            (int offset, int length) = skipped.GetOffsetAndLength(parameters.Length);
            Apply(parameters, gradients, start, offset - start);
            start = offset + length;
        }
        Apply(parameters, gradients, start, parameters.Length - start);
        StepCount++;
    }

    /// <summary>
    /// This step's update of <paramref name="parameters"/>[offset, offset + length), for a kernel that applies it as it
    /// computes that slice's gradient, so the gradient never goes to memory (see
    /// <see cref="Cpu.DenseKernels.Backward"/>). The step then ends with <see cref="Step(Span{float}, ReadOnlySpan{float}, ReadOnlySpan{Range})"/>,
    /// which leaves that slice out.
    /// </summary>
    public SgdSliceUpdate UpdateOf(float[] parameters, int offset, int length)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Length != Velocity.Length)
            throw new ArgumentException($"SGD: parameters ({parameters.Length}) must have {Velocity.Length} floats.", nameof(parameters));
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if ((long)offset + length > parameters.Length)
            throw new ArgumentOutOfRangeException(nameof(length), $"SGD: slice [{offset}, {(long)offset + length}) lies outside the {parameters.Length} parameters.");
        return new SgdSliceUpdate(parameters, Velocity, offset, length, CurrentRule);
    }

    private static (int Offset, int Length) CheckedSlice(Range slice, int length)
    {
        try
        {
            return slice.GetOffsetAndLength(length);
        }
        catch (ArgumentOutOfRangeException)
        {
            throw new ArgumentException($"SGD: the slice {slice} updated in backward lies outside the {length} parameters.", "updatedInBackward");
        }
    }

    private SgdRule CurrentRule => new(Options.Variant, LearningRate, Options.Momentum, Options.WeightDecay, firstStep: StepCount == 0);

    private void Apply(Span<float> parameters, ReadOnlySpan<float> gradients, int offset, int length)
    {
        if (length == 0) return;
        fixed (float* p = parameters)
        fixed (float* g = gradients)
        fixed (float* v = Velocity)
        {
            CurrentRule.Apply(p + offset, g + offset, v + offset, length, _cpu);
        }
    }
}

/// <summary>
/// The update of one slice of the parameters in the current step (<see cref="Sgd.UpdateOf"/>): the rule with this
/// step's settings, and the slice of the parameters and of the velocity it applies to.
/// </summary>
public readonly struct SgdSliceUpdate
{
    internal SgdSliceUpdate(float[] parameters, float[] velocity, int offset, int length, SgdRule rule)
    {
        (ParameterArray, VelocityArray, Offset, Length, Rule) = (parameters, velocity, offset, length, rule);
    }

    internal float[] ParameterArray { get; }
    internal float[] VelocityArray { get; }
    internal int Offset { get; }

    /// <summary>Parameters in the slice.</summary>
    public int Length { get; }
    internal SgdRule Rule { get; }

    /// <summary>The parameters this update changes.</summary>
    public Span<float> Parameters => new(ParameterArray, Offset, Length);

    internal Span<float> Velocity => new(VelocityArray, Offset, Length);
}

/// <summary>
/// The element-wise SGD update with one step's settings. Element-wise, so where it runs (a whole buffer split over
/// threads, or a kernel's strip as the gradient is computed) does not change the result.
/// </summary>
internal readonly unsafe struct SgdRule(SgdVariant variant, float learningRate, float momentum, float weightDecay, bool firstStep)
{
    private const int MinimumElementsPerThread = 1 << 18;

    /// <summary>Applies the rule to [0, length), split over <paramref name="cpu"/>'s threads when long enough to gain from both cores' bandwidth.</summary>
    public void Apply(float* p, float* g, float* v, int length, CpuContext cpu)
    {
        int chunks = Math.Clamp(Math.Min(cpu.Threads, length / MinimumElementsPerThread), 1, 64);
        if (chunks == 1)
        {
            Apply(p, g, v, length);
            return;
        }
        var job = new StepJob
        {
            Parameters = p, Gradients = g, Velocity = v, Length = length,
            // Chunks rounded to 64 floats (four cache lines) so threads never share a line.
            ChunkLength = (length / chunks + 63) & ~63,
            Rule = this,
        };
        cpu.For(chunks, &RunChunk, &job);
    }

    private struct StepJob
    {
        public float* Parameters, Gradients, Velocity;
        public int Length, ChunkLength;
        public SgdRule Rule;
    }

    private static void RunChunk(void* state, int chunk, int threadIndex)
    {
        var job = (StepJob*)state;
        int start = chunk * job->ChunkLength;
        int count = Math.Min(job->ChunkLength, job->Length - start);
        if (count > 0) job->Rule.Apply(job->Parameters + start, job->Gradients + start, job->Velocity + start, count);
    }

    /// <summary>Applies the rule to [0, length) on the calling thread.</summary>
    public void Apply(float* p, float* g, float* v, int length)
    {
        int i = 0;
        if (variant == SgdVariant.PyTorch)
        {
            if (Vector512.IsHardwareAccelerated)
            {
                var wd = Vector512.Create(weightDecay);
                var mu = Vector512.Create(momentum);
                var negativeLr = Vector512.Create(-learningRate);
                for (; i <= length - Vector512<float>.Count; i += Vector512<float>.Count)
                {
                    var param = Vector512.Load(p + i);
                    // torch: grad.add(param, alpha=wd) is a fused multiply-add; buf.mul_(mu).add_(grad) rounds twice.
                    var grad = Vector512.FusedMultiplyAdd(param, wd, Vector512.Load(g + i));
                    var velocity = firstStep ? grad : mu * Vector512.Load(v + i) + grad;
                    velocity.Store(v + i);
                    Vector512.FusedMultiplyAdd(velocity, negativeLr, param).Store(p + i);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var wd = Vector256.Create(weightDecay);
                var mu = Vector256.Create(momentum);
                var negativeLr = Vector256.Create(-learningRate);
                for (; i <= length - Vector256<float>.Count; i += Vector256<float>.Count)
                {
                    var param = Vector256.Load(p + i);
                    var grad = Vector256.FusedMultiplyAdd(param, wd, Vector256.Load(g + i));
                    var velocity = firstStep ? grad : mu * Vector256.Load(v + i) + grad;
                    velocity.Store(v + i);
                    Vector256.FusedMultiplyAdd(velocity, negativeLr, param).Store(p + i);
                }
            }
            for (; i < length; i++)
            {
                float grad = MathF.FusedMultiplyAdd(p[i], weightDecay, g[i]);
                float velocity = firstStep ? grad : momentum * v[i] + grad;
                v[i] = velocity;
                p[i] = MathF.FusedMultiplyAdd(velocity, -learningRate, p[i]);
            }
        }
        else
        {
            // v = mu*v - (wd*lr)*p - lr*grad; p = p + v
            float decay = weightDecay * learningRate;
            if (Vector512.IsHardwareAccelerated)
            {
                var mu = Vector512.Create(momentum);
                var negativeDecay = Vector512.Create(-decay);
                var negativeLr = Vector512.Create(-learningRate);
                for (; i <= length - Vector512<float>.Count; i += Vector512<float>.Count)
                {
                    var param = Vector512.Load(p + i);
                    var velocity = Vector512.FusedMultiplyAdd(Vector512.Load(g + i), negativeLr,
                        Vector512.FusedMultiplyAdd(param, negativeDecay, mu * Vector512.Load(v + i)));
                    velocity.Store(v + i);
                    (param + velocity).Store(p + i);
                }
            }
            for (; i < length; i++)
            {
                float velocity = MathF.FusedMultiplyAdd(g[i], -learningRate, MathF.FusedMultiplyAdd(p[i], -decay, momentum * v[i]));
                v[i] = velocity;
                p[i] += velocity;
            }
        }
    }
}
