using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
/// depend on the thread count.
/// </summary>
public sealed class Sgd
{
    private const int MinimumElementsPerThread = 1 << 18;

    public Sgd(int parameterCount, SgdOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(parameterCount);
        ArgumentNullException.ThrowIfNull(options);
        if (!(options.LearningRate >= 0) || !(options.Momentum >= 0) || !(options.WeightDecay >= 0))
            throw new ArgumentOutOfRangeException(nameof(options), options, "SGD: learning rate, momentum and weight decay must be non-negative numbers.");
        Options = options;
        LearningRate = options.LearningRate;
        Velocity = new float[parameterCount];
    }

    public SgdOptions Options { get; }

    /// <summary>The rate the next step uses; schedules change it between steps.</summary>
    public float LearningRate { get; set; }

    /// <summary>Momentum buffer, same layout as the parameters.</summary>
    public float[] Velocity { get; }

    /// <summary>Steps taken so far. While 0, the PyTorch rule sets the velocity to the gradient (torch's empty momentum buffer).</summary>
    public long StepCount { get; set; }

    /// <summary>Most threads a step may use; defaults to the processor count.</summary>
    public int MaxThreads { get; set; } = Environment.ProcessorCount;

    /// <summary>One update of <paramref name="parameters"/> from <paramref name="gradients"/> (same length as the velocity).</summary>
    public unsafe void Step(Span<float> parameters, ReadOnlySpan<float> gradients)
    {
        if (parameters.Length != Velocity.Length || gradients.Length != Velocity.Length)
            throw new ArgumentException($"SGD: parameters ({parameters.Length}) and gradients ({gradients.Length}) must both have {Velocity.Length} floats.");
        bool firstStep = StepCount == 0;
        var update = new Update(Options.Variant, LearningRate, Options.Momentum, Options.WeightDecay, firstStep);
        int length = parameters.Length;
        int threads = Math.Clamp(Math.Min(MaxThreads, length / MinimumElementsPerThread), 1, 64);
        fixed (float* p = parameters)
        fixed (float* g = gradients)
        fixed (float* v = Velocity)
        {
            if (threads == 1)
            {
                update.Apply(p, g, v, length);
            }
            else
            {
                // Chunks rounded to 64 floats (a cache line of 16, times four) so threads never share a line.
                int chunk = (length / threads + 63) & ~63;
                nint pp = (nint)p, gp = (nint)g, vp = (nint)v;
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                {
                    int start = t * chunk;
                    int count = Math.Min(chunk, length - start);
                    if (count > 0)
                        update.Apply((float*)pp + start, (float*)gp + start, (float*)vp + start, count);
                });
            }
        }
        StepCount++;
    }

    private readonly struct Update(SgdVariant variant, float learningRate, float momentum, float weightDecay, bool firstStep)
    {
        public unsafe void Apply(float* p, float* g, float* v, int length)
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
}
