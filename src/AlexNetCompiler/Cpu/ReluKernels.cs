using System.Numerics;
using System.Runtime.InteropServices;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// ReLU, in place. Backward masks the gradient where the forward OUTPUT is not positive (output and input
/// are positive at the same places, so the output is enough and the input buffer can be reused).
/// </summary>
public static class ReluKernels
{
    /// <summary>data[i] = max(0, data[i]); NaN stays NaN as in torch.relu.</summary>
    public static void ForwardReference(Span<float> data)
    {
        for (int i = 0; i < data.Length; i++)
            if (data[i] < 0f) data[i] = 0f;
    }

    /// <summary>dData[i] = output[i] &gt; 0 ? dData[i] : 0.</summary>
    public static void BackwardReference(ReadOnlySpan<float> output, Span<float> dData)
    {
        ThrowIfLengthsDiffer(output.Length, dData.Length);
        for (int i = 0; i < dData.Length; i++)
            if (!(output[i] > 0f)) dData[i] = 0f;
    }

    /// <summary>Vectorised ForwardReference.</summary>
    public static void Forward(Span<float> data)
    {
        Span<Vector<float>> vectors = MemoryMarshal.Cast<float, Vector<float>>(data);
        for (int i = 0; i < vectors.Length; i++)
        {
            Vector<float> v = vectors[i];
            // Select rather than Max so NaN propagates exactly as in the reference.
            vectors[i] = Vector.ConditionalSelect(Vector.LessThan(v, Vector<float>.Zero), Vector<float>.Zero, v);
        }
        ForwardReference(data[(vectors.Length * Vector<float>.Count)..]);
    }

    /// <summary>Vectorised BackwardReference.</summary>
    public static void Backward(ReadOnlySpan<float> output, Span<float> dData)
    {
        ThrowIfLengthsDiffer(output.Length, dData.Length);
        ReadOnlySpan<Vector<float>> outputs = MemoryMarshal.Cast<float, Vector<float>>(output);
        Span<Vector<float>> grads = MemoryMarshal.Cast<float, Vector<float>>(dData);
        for (int i = 0; i < grads.Length; i++)
            grads[i] = Vector.ConditionalSelect(Vector.GreaterThan(outputs[i], Vector<float>.Zero), grads[i], Vector<float>.Zero);
        int done = grads.Length * Vector<float>.Count;
        BackwardReference(output[done..], dData[done..]);
    }

    private static void ThrowIfLengthsDiffer(int outputLength, int gradientLength)
    {
        if (outputLength != gradientLength)
            throw new ArgumentException($"ReLU backward: output has {outputLength} floats but the gradient has {gradientLength}.");
    }
}
