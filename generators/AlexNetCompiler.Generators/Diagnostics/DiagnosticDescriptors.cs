using Microsoft.CodeAnalysis;

namespace AlexNetCompiler.Generators.Diagnostics;

/// <summary>
/// Every diagnostic the generator reports. IDs are stable (tracked in AnalyzerReleases.*.md and documented in
/// docs/diagnostics.md). Messages that concern one layer start with its label, e.g. "Layer 3 'features.3' (Conv2d)".
/// </summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "AlexNetCompiler";

    /// <summary>
    /// The project's home. Must equal the RepositoryUrl MSBuild property in Directory.Build.props, which the package
    /// links to (RepositoryUrlTests checks that they agree).
    /// </summary>
    public const string RepositoryUrl = "https://github.com/alexnetcompiler/AlexNetCompiler";

    /// <summary>The diagnostics reference; each ID has a section there whose heading is just the ID.</summary>
    public const string HelpDocumentUrl = RepositoryUrl + "/blob/main/docs/diagnostics.md";

    /// <summary>The link an IDE shows on a diagnostic: its section of docs/diagnostics.md ("## ANC0013" -> "#anc0013").</summary>
    public static string HelpLink(string id) => HelpDocumentUrl + "#" + id.ToLowerInvariant();

    private static DiagnosticDescriptor Error(string id, string title, string message, string help) =>
        new(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true, description: help, helpLinkUri: HelpLink(id));

    private static DiagnosticDescriptor Warning(string id, string title, string message, string help) =>
        new(id, title, message, Category, DiagnosticSeverity.Warning, isEnabledByDefault: true, description: help, helpLinkUri: HelpLink(id));

    public static readonly DiagnosticDescriptor InternalError = Error(
        "ANC0001", "The network generator failed",
        "The AlexNetCompiler generator failed on '{0}': {1}",
        "An unexpected error occurred while generating the network; no code was generated for it. Please report the spec that caused it.");

    public static readonly DiagnosticDescriptor NetworkNotPartial = Error(
        FixableDiagnosticIds.NetworkNotPartial, "Network class must be partial",
        "Network class '{0}' must be declared partial so that the generator can add its members",
        "Add the 'partial' modifier to the class that carries [Network].");

    public static readonly DiagnosticDescriptor NetworkClassUnsupported = Error(
        "ANC0003", "Unsupported network class",
        "Network class '{0}' cannot be {1}",
        "A network class must be a plain, non-generic, non-static partial class (not a record).");

    public static readonly DiagnosticDescriptor ContainingTypeNotPartial = Error(
        "ANC0004", "Containing type must be a non-generic partial type",
        "Network class '{0}' is nested in '{1}', which must be a non-generic partial type",
        "The generator re-declares every containing type of a nested network; mark each of them partial, or move the network to namespace level.");

    public static readonly DiagnosticDescriptor LayersSplitAcrossPartials = Error(
        "ANC0005", "Layer attributes split across partial declarations",
        "The layer attributes of '{0}' are split across partial declarations; write them all on one declaration so their order is defined",
        "Layer order is the order the attributes are written in. Across several partial declarations that order is not defined, so all layer attributes must be on one declaration.");

    public static readonly DiagnosticDescriptor NoLayers = Error(
        "ANC0006", "Network has no layers",
        "Network '{0}' declares no layers; add layer attributes such as [Conv2d(...)] and [Dense(...)]",
        "A network needs at least one layer, and its last layer must be a Dense layer that produces the class scores.");

    public static readonly DiagnosticDescriptor InvalidInputShape = Error(
        "ANC0007", "Invalid network input shape",
        "Network '{0}': input {1} must be positive (was {2})",
        "[Network] needs a positive Channels, Height and Width (one sample, CHW).");

    public static readonly DiagnosticDescriptor ArgumentOutOfRange = Error(
        "ANC0008", "Layer argument out of range",
        "{0}: {1} must be {2} (was {3})",
        "Channels, features, kernels and strides must be positive, paddings non-negative, dropout P in [0, 1), LRN alpha and beta non-negative and K positive, and a max pool's padding at most half its kernel (PyTorch's rule).");

    public static readonly DiagnosticDescriptor LrnSizeEven = Error(
        "ANC0009", "LRN size must be odd",
        "{0}: LRN Size must be odd so that the window is centred on each channel (was {1})",
        "The local response normalisation window covers Size channels centred on each channel (the paper uses 5); an even size has no centre.");

    public static readonly DiagnosticDescriptor KernelLargerThanInput = Error(
        "ANC0010", "Kernel larger than the padded input",
        "{0}: kernel {1} is larger than its padded input {2} (input {3}, padding {4}), so the output would be {5}",
        "The output size is floor((input + 2 * padding - kernel) / stride) + 1, which reaches zero or below exactly when the kernel is larger than the padded input. Reduce the kernel, add padding, or remove a down-sampling layer earlier in the network.");

    public static readonly DiagnosticDescriptor TensorTooLarge = Error(
        "ANC0011", "Tensor too large",
        "{0}: {1} has {2} elements, more than the {3} that a flat float buffer can index",
        "Activations and the parameter buffer are indexed with 32-bit offsets; every tensor, and all parameters together, must hold at most 2,147,483,647 floats.");

    public static readonly DiagnosticDescriptor SizeBeyondLimit = Warning(
        "ANC0012", "Network size beyond the sanity limit",
        "Network '{0}': {1} is {2}, beyond the {3} at which this warning starts; check the layer sizes",
        "Limits: 1,000,000,000 parameters (4 GB of float32, about 16 times AlexNet) and 1 GiB of training activations per sample (AlexNet needs a few MiB). Sizes like these usually come from a missing stride or pool.");

    public static readonly DiagnosticDescriptor StrideDropsInput = Warning(
        FixableDiagnosticIds.StrideDropsInput, "Stride does not tile the input",
        "{0}: with kernel {1} and stride {2}, the last {3} row(s) and {4} column(s) of its {5} input are never read; an input of {6} would tile exactly",
        "When (input + 2 * padding - kernel) is not a multiple of the stride, the windows stop short of the far edge and real input pixels (not just padding) are ignored. The paper's 224x224 input with an 11x11 stride-4 conv1 is the classic case: 227x227 tiles exactly.");

    public static readonly DiagnosticDescriptor GroupsDoNotDivide = Error(
        "ANC0014", "Groups do not divide the channels",
        "{0}: Groups {1} does not divide its {2} channels ({3})",
        "A grouped convolution splits input and output channels into Groups equal parts, so Groups must divide both.");

    public static readonly DiagnosticDescriptor DenseInFeaturesMismatch = Error(
        FixableDiagnosticIds.DenseInFeaturesMismatch, "Dense input features disagree with the previous output",
        "{0}: InFeatures is {1}, but the previous output {2} flattens to {3} features",
        "InFeatures is an optional check of the flattened size of the previous layer's output (C * H * W). Remove it to infer the size, or fix the layers before it.");

    public static readonly DiagnosticDescriptor SpatialLayerAfterDense = Error(
        "ANC0016", "Spatial layer after a Dense layer",
        "{0} cannot follow {1}: its input is already flattened to {2} features",
        "Conv2d, Lrn, MaxPool and AdaptiveAvgPool work on [C, H, W] maps; a Dense layer flattens its input, so they must all come before the first Dense layer.");

    public static readonly DiagnosticDescriptor LastLayerNotDense = Error(
        "ANC0017", "Network does not end with a Dense layer",
        "Network '{0}' must end with a Dense layer that produces the class scores, but its last layer is {1}",
        "The loss head (softmax cross-entropy) works on the outputs of the last Dense layer; only [SoftmaxCrossEntropy] may follow it.");

    public static readonly DiagnosticDescriptor ReluFirst = Error(
        "ANC0018", "ReLU as the first layer",
        "{0}: ReLU cannot be the first layer; it would rectify the network's input",
        "A ReLU rectifies the output of the layer before it (and is fused into a preceding Conv2d or Dense). Images are inputs, not activations; remove the ReLU or put a layer before it.");

    public static readonly DiagnosticDescriptor LossNotLast = Error(
        "ANC0019", "Loss head is not the last layer",
        "{0}: SoftmaxCrossEntropy is the loss head and must be the last layer, but {1} follows it",
        "[SoftmaxCrossEntropy] is optional (it is implied); if written, it must be written once, as the last layer attribute.");

    public static readonly DiagnosticDescriptor DuplicateLayerName = Error(
        "ANC0020", "Duplicate layer name",
        "{0}: {1} '{2}' is already used by {3}",
        "State-dict names (Name, or the torchvision default) and the C# identifiers derived from them must be unique within a network.");

    public static readonly DiagnosticDescriptor InvalidLayerName = Error(
        "ANC0021", "Invalid layer name",
        "{0}: Name '{1}' cannot be used: {2}",
        "A layer Name is the state-dict prefix of its parameters (e.g. \"features.0\"); it must be non-empty and contain at least one letter or digit, from which the C# identifier is made.");

    public static readonly DiagnosticDescriptor SingleClass = Warning(
        "ANC0022", "Single-class output",
        "Network '{0}' ends in a Dense layer with one output; a softmax over one class is always 1, so the loss is constant and nothing trains",
        "Softmax cross-entropy needs at least two classes. Use Dense(2) for a two-class problem.");

    public static readonly DiagnosticDescriptor MemberCollision = Error(
        "ANC0023", "Member collides with a generated member",
        "{0} collides with the {1} that the generator adds to network '{2}'; {3}",
        "The generator adds constants, parameter views, buffers, methods and a constructor to a network class (docs/architecture.md, \"Generated code\"). A member of the user's with the same name (a method or constructor: the same parameter types), a member inherited with that name, a class named like a generated member, or a primary constructor would make the generated code fail to compile or hide a member, so nothing is generated for the network until the collision is resolved.");
}
