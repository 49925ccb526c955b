namespace AlexNetCompiler.Generators.Diagnostics;

// Compiled into both the generator and the code-fix assembly (generators/AlexNetCompiler.CodeFixes), which cannot
// reference each other: the generator reports a diagnostic with what its fix needs in Diagnostic.Properties, under
// these keys, and the fix reads them back instead of repeating the shape inference.

/// <summary>The IDs of the diagnostics that the IDE offers code fixes for.</summary>
internal static class FixableDiagnosticIds
{
    public const string NetworkNotPartial = "ANC0002";
    public const string StrideDropsInput = "ANC0013";
    public const string DenseInFeaturesMismatch = "ANC0015";
}

/// <summary>Keys of <see cref="Microsoft.CodeAnalysis.Diagnostic.Properties"/> on the fixable diagnostics.</summary>
internal static class DiagnosticPropertyNames
{
    /// <summary>ANC0013: the smallest network input height, at least the current one, at which no window layer
    /// before the first AdaptiveAvgPool or Dense drops real input rows. Absent for a layer after an AdaptiveAvgPool,
    /// when a Dense layer's explicit InFeatures would no longer match, or when no size within the search tiles both axes.</summary>
    public const string TilingInputHeight = "TilingInputHeight";

    /// <summary>ANC0013: the same as <see cref="TilingInputHeight"/>, for the width.</summary>
    public const string TilingInputWidth = "TilingInputWidth";

    /// <summary>ANC0013: the smallest padding at which the layer reads its whole input, as the layer attribute's
    /// arguments to set, e.g. "Padding=2" or "PaddingHeight=1;PaddingWidth=2". Absent when no padding can do it
    /// (a max pool's padding is limited to half its kernel).</summary>
    public const string TilingPaddingArguments = "TilingPaddingArguments";

    /// <summary>ANC0015: the flattened size of the previous output, the InFeatures the Dense layer should have.</summary>
    public const string InferredInFeatures = "InferredInFeatures";
}
