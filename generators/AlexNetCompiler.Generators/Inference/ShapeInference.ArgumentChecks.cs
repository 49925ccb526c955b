using System;
using System.Collections.Generic;
using AlexNetCompiler.Generators.Diagnostics;
using AlexNetCompiler.Generators.Model;

namespace AlexNetCompiler.Generators.Inference;

// Argument checks; each reports ANC0008 at the argument that set the value.
internal static partial class ShapeInference
{
    private sealed partial class Builder
    {

        private bool Fail(LayerSpec l, string label, string what, string constraint, object value)
        {
            Report(DiagnosticDescriptors.ArgumentOutOfRange, l.LocationOf(what), label, what, constraint, value);
            return false;
        }

        private bool Positive(LayerSpec l, string label, string what, int value, params string[] arguments)
        {
            if (value > 0) return true;
            Report(DiagnosticDescriptors.ArgumentOutOfRange, l.LocationOf(arguments), label, what, "positive", value);
            return false;
        }

        private bool NotNegative(LayerSpec l, string label, string what, int value) => AtLeast(l, label, what, value, 0, "0 or more");

        private bool NotNegativeResolved(LayerSpec l, string label, string what, int value, params string[] arguments)
        {
            if (value >= 0) return true;
            Report(DiagnosticDescriptors.ArgumentOutOfRange, l.LocationOf(arguments), label, what, "0 or more", value);
            return false;
        }

        private bool AtLeast(LayerSpec l, string label, string what, int value, int minimum, string constraint)
        {
            if (value >= minimum) return true;
            Report(DiagnosticDescriptors.ArgumentOutOfRange, l.LocationOf(what), label, what, constraint, value);
            return false;
        }

        private bool FiniteOrUnset(LayerSpec l, string label, float biasInit)
        {
            if (!float.IsInfinity(biasInit)) return true;
            return Fail(l, label, "BiasInit", "finite", Format(biasInit));
        }

        private bool FitsInt(LayerSpec l, string label, string what, long length)
        {
            if (length <= int.MaxValue) return true;
            Report(DiagnosticDescriptors.TensorTooLarge, l.Location, label, what, length, int.MaxValue);
            return false;
        }
    }
}
