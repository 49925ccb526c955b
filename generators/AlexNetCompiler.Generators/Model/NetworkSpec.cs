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
    float DropoutP = 0f)
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

/// <summary>
/// A member the user declared in the network class (any part): generated members must not collide with it. Methods
/// and constructors (Name ".ctor") also carry their parameter count, since overloads may share a name. No location:
/// every edit in the class body would move it and rerun the pipeline (see <see cref="MemberLocations"/>).
/// </summary>
internal sealed record UserMember(string Name, bool IsMethod, int ParameterCount);

/// <summary>Where the user's members of one network class are, read only to place a collision diagnostic.</summary>
internal sealed record MemberLocations(string DisplayName, LocationInfo? ClassLocation, EquatableArray<MemberLocation> Members)
{
    public LocationInfo? Find(string name, int parameterCount)
    {
        foreach (MemberLocation m in Members)
        {
            if (m.Name == name && m.ParameterCount == parameterCount) return m.Location;
        }
        return null;
    }
}

internal sealed record MemberLocation(string Name, int ParameterCount, LocationInfo? Location);

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

/// <summary>The inferred model (null when the spec has errors) and every diagnostic for one network.</summary>
internal sealed record NetworkResult(NetworkModel? Model, string DisplayName, EquatableArray<DiagnosticInfo> Diagnostics,
    EquatableArray<UserMember> UserMembers = default);
