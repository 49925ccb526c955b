using System;
using System.Collections.Generic;
using AlexNetCompiler.Generators.Diagnostics;
using AlexNetCompiler.Generators.Model;

namespace AlexNetCompiler.Generators.Inference;

// Which layer may follow which (ReLU not first, no spatial layer after a Dense, a Dense last).
internal static partial class ShapeInference
{
    private sealed partial class Builder
    {
        private void CheckOrder(List<LayerSpec> body, Func<int, string> label)
        {
            if (body[0].Kind == LayerKind.Relu)
            {
                Report(DiagnosticDescriptors.ReluFirst, body[0].Location, label(0));
            }
            int firstDense = -1;
            for (int i = 0; i < body.Count; i++)
            {
                if (body[i].Kind == LayerKind.Dense && firstDense < 0)
                {
                    firstDense = i;
                }
                else if (firstDense >= 0 && IsSpatial(body[i].Kind))
                {
                    string dense = label(firstDense);
                    Report(DiagnosticDescriptors.SpatialLayerAfterDense, body[i].Location, label(i), char.ToLowerInvariant(dense[0]) + dense.Substring(1), body[firstDense].Units);
                }
            }
            int last = body.Count - 1;
            if (body[last].Kind != LayerKind.Dense)
            {
                Report(DiagnosticDescriptors.LastLayerNotDense, body[last].Location, _spec.DisplayName, $"layer {last} ({body[last].Kind})");
            }
        }
    }
}
