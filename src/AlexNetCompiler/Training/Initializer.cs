namespace AlexNetCompiler.Training;

/// <summary>How to draw the initial parameters.</summary>
public enum InitScheme
{
    /// <summary>Krizhevsky et al. 2012, section 5: weights N(0, 0.01^2); biases 1 in conv2, conv4, conv5 and
    /// the hidden fully connected layers, 0 elsewhere (<see cref="ParameterDescriptor.PaperBiasValue"/>).</summary>
    Paper,

    /// <summary>He et al. 2015, "Delving Deep into Rectifiers": weights N(0, 2 / fanIn) for ReLU networks; biases 0.</summary>
    He,
}

/// <summary>Seeded, reproducible initialisation of a network's flat parameter buffer.</summary>
public static class Initializer
{
    /// <summary>Weights of one tensor are drawn in chunks of this many values, each chunk from its own
    /// sub-stream, so large tensors fill in parallel and the result does not depend on the thread count.</summary>
    private const int ChunkLength = 1 << 20;

    public const float PaperWeightStandardDeviation = 0.01f;

    public static void Initialize(NetworkDescriptor network, Span<float> parameters, InitScheme scheme, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (parameters.Length != network.ParameterCount)
            throw new ArgumentException($"Initialize {network.Name}: the parameter buffer has {parameters.Length} floats, the network {network.ParameterCount}.", nameof(parameters));

        var jobs = new List<(int Offset, int Length, float StandardDeviation, ulong Stream)>();
        for (int t = 0; t < network.Parameters.Count; t++)
        {
            ParameterDescriptor parameter = network.Parameters[t];
            if (parameter.Offset < 0 || parameter.Length < 0 || (long)parameter.Offset + parameter.Length > parameters.Length)
                throw new ArgumentException($"Initialize {network.Name}: tensor '{parameter.Name}' [{parameter.Offset}, +{parameter.Length}) lies outside the parameter buffer.");
            Span<float> tensor = parameters.Slice(parameter.Offset, parameter.Length);
            if (parameter.Role == ParameterRole.Bias)
            {
                tensor.Fill(scheme == InitScheme.Paper ? parameter.PaperBiasValue : 0f);
                continue;
            }
            float standardDeviation = scheme switch
            {
                InitScheme.Paper => PaperWeightStandardDeviation,
                InitScheme.He => parameter.FanIn > 0
                    ? MathF.Sqrt(2f / parameter.FanIn)
                    : throw new ArgumentException($"Initialize {network.Name}: tensor '{parameter.Name}' has fan-in {parameter.FanIn}; He initialisation needs it positive."),
                _ => throw new ArgumentOutOfRangeException(nameof(scheme), scheme, "Unknown initialisation scheme."),
            };
            for (int start = 0, chunk = 0; start < parameter.Length; start += ChunkLength, chunk++)
            {
                // Stream id: tensor index in the high bits, chunk index in the low bits.
                jobs.Add((parameter.Offset + start, Math.Min(ChunkLength, parameter.Length - start), standardDeviation, ((ulong)t << 32) | (uint)chunk));
            }
        }

        unsafe
        {
            fixed (float* basePointer = parameters)
            {
                nint address = (nint)basePointer;
                Parallel.For(0, jobs.Count, j =>
                {
                    var (offset, length, standardDeviation, stream) = jobs[j];
                    var random = SeededRandom.ForStream(seed, stream);
                    var values = new Span<float>((float*)address + offset, length);
                    for (int i = 0; i < values.Length; i++)
                        values[i] = (float)(standardDeviation * random.NextGaussian());
                });
            }
        }
    }
}
