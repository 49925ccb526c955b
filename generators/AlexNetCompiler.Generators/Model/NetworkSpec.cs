using AlexNetCompiler.Generators.Diagnostics;

namespace AlexNetCompiler.Generators.Model;

// What the parser reads from the attributes, before any shape is inferred: the raw argument values as
// written (with the attributes' defaults, LayerDefaults, where an argument is left out) and where each argument is, so
// that diagnostics can point at it.

/// <summary>Where one attribute argument was written, keyed by the attribute property it sets (e.g. "Stride").</summary>
internal sealed record ArgumentLocation(string Name, LocationInfo Location);

/// <summary>One layer attribute, as written. Values that an attribute does not have keep their defaults.</summary>
internal sealed record LayerSpec(
    LayerKind Kind,
    string? Name,
    LocationInfo? Location,
    EquatableArray<ArgumentLocation> Arguments,
    int Units = 0,                 // Conv2d OutChannels or Dense OutFeatures
    int Kernel = 0,
    int KernelHeight = 0,
    int KernelWidth = 0,
    int Stride = LayerDefaults.PoolStride, // the parser sets LayerDefaults.ConvStride for Conv2d
    int StrideHeight = 0,
    int StrideWidth = 0,
    int Padding = 0,
    int PaddingHeight = LayerDefaults.AxisPadding,
    int PaddingWidth = LayerDefaults.AxisPadding,
    int Groups = LayerDefaults.Groups,
    bool Bias = LayerDefaults.Bias,
    float BiasInit = LayerDefaults.BiasInit,
    int InFeatures = 0,
    int LrnSize = LayerDefaults.LrnSize,
    float LrnAlpha = LayerDefaults.LrnAlpha,
    float LrnBeta = LayerDefaults.LrnBeta,
    float LrnK = LayerDefaults.LrnK,
    float DropoutP = 0f,
    int OutputSize = 0,            // AdaptiveAvgPool: square output; OutputHeight/OutputWidth override a side
    int OutputHeight = 0,
    int OutputWidth = 0)
{
    public LocationInfo? ArgumentLocationOf(string name)
    {
        foreach (ArgumentLocation a in Arguments)
        {
            if (a.Name == name) return a.Location;
        }
        return null;
    }

    public bool HasArgument(string name) => ArgumentLocationOf(name) is not null;

    /// <summary>The first of the named arguments that was written, else the whole attribute.</summary>
    public LocationInfo? LocationOf(params string[] names)
    {
        foreach (string name in names)
        {
            LocationInfo? location = ArgumentLocationOf(name);
            if (location is not null) return location;
        }
        return Location;
    }
}

/// <summary>What a name in a network class is, as far as C#'s rules for names within one class care.</summary>
internal enum MemberKind
{
    /// <summary>A constant, field, property, event or nested type: the only member of its name.</summary>
    Member,

    /// <summary>A method: others of its name may exist with other parameter types (overloads).</summary>
    Method,

    /// <summary>A constructor: one per list of parameter types.</summary>
    Constructor,

    /// <summary>A primary constructor, which every other constructor must call: the generated one cannot.</summary>
    PrimaryConstructor,

    /// <summary>The class's own name, which none of its members may have.</summary>
    ClassName,
}

/// <summary>
/// A name the user gave a network class or a member of it (in any part), or a member the class inherits: a
/// generated member must not collide with it.
/// </summary>
/// <param name="Name">The member's name (".ctor" for a constructor).</param>
/// <param name="Signature">For a method or constructor, its <see cref="Parsing.MemberSignature"/>; otherwise "".</param>
/// <param name="Display">How a diagnostic names it, e.g. "Forward(float[], int, float[])".</param>
/// <param name="InheritedFrom">The base class that declares it, or "" for the user's own member.</param>
internal sealed record UserMemberName(string Name, MemberKind Kind, string Signature, string Display, string InheritedFrom);

/// <summary>
/// A <see cref="UserMemberName"/> and where to report a collision with it. Only the spec holds locations: they
/// change with every edit above the member, and the steps after the parser must not rerun for that.
/// </summary>
internal sealed record UserMember(UserMemberName Name, LocationInfo? Location);

/// <summary>The parser's result for one [Network] class.</summary>
internal sealed record NetworkSpec(
    string Namespace,
    string ClassName,
    string DisplayName,
    string Accessibility,
    EquatableArray<ContainingTypeModel> ContainingTypes,
    LocationInfo? ClassLocation,
    LocationInfo? NetworkAttributeLocation,
    EquatableArray<ArgumentLocation> NetworkArguments,
    int Channels,
    int Height,
    int Width,
    EquatableArray<LayerSpec> Layers,
    EquatableArray<DiagnosticInfo> Diagnostics,
    bool HasCompilerErrors,
    EquatableArray<UserMember> Members = default)
{
    public LocationInfo? NetworkArgumentLocation(string name)
    {
        foreach (ArgumentLocation a in NetworkArguments)
        {
            if (a.Name == name) return a.Location;
        }
        return NetworkAttributeLocation;
    }
}

/// <summary>
/// The inferred model (null when the spec has errors), every diagnostic for one network, and the names of the
/// user's members, which the generated members must not collide with.
/// </summary>
internal sealed record NetworkResult(NetworkModel? Model, string DisplayName, EquatableArray<DiagnosticInfo> Diagnostics,
    EquatableArray<UserMemberName> UserMembers = default);
