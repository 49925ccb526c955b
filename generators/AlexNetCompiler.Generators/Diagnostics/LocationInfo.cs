using System;
using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace AlexNetCompiler.Generators.Diagnostics;

/// <summary>
/// A source location that compares by value (file path and spans), so that pipeline models holding it can be
/// cached. A <see cref="Location"/> would keep its syntax tree, and with it the whole compilation, alive.
/// </summary>
internal sealed record LocationInfo(string FilePath, TextSpan TextSpan, LinePositionSpan LineSpan)
{
    public Location ToLocation() => Location.Create(FilePath, TextSpan, LineSpan);

    public static LocationInfo? From(SyntaxNode? node) => node is null ? null : From(node.GetLocation());

    public static LocationInfo? From(SyntaxToken token) => From(token.GetLocation());

    public static LocationInfo? From(Location? location)
    {
        if (location is null || location.SourceTree is null) return null;
        return new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);
    }
}

/// <summary>One entry of a diagnostic's <see cref="Diagnostic.Properties"/>: data a code fix needs (DiagnosticPropertyNames).</summary>
internal sealed record DiagnosticProperty(string Name, string Value);

/// <summary>A diagnostic to report, held by value until the output step turns it into a <see cref="Diagnostic"/>.</summary>
internal sealed record DiagnosticInfo(DiagnosticDescriptor Descriptor, LocationInfo? Location, Model.EquatableArray<string> Arguments)
{
    /// <summary>What a code fix needs to fix this diagnostic; empty for most.</summary>
    public Model.EquatableArray<DiagnosticProperty> Properties { get; init; } = Model.EquatableArray<DiagnosticProperty>.Empty;

    public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, LocationInfo? location, params object[] arguments)
    {
        var formatted = new string[arguments.Length];
        for (int i = 0; i < arguments.Length; i++)
        {
            formatted[i] = arguments[i] switch
            {
                IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
                null => "",
                var o => o.ToString() ?? "",
            };
        }
        return new DiagnosticInfo(descriptor, location, Model.EquatableArray.ToEquatableArray(formatted));
    }

    public DiagnosticSeverity Severity => Descriptor.DefaultSeverity;

    public Diagnostic ToDiagnostic() => ToDiagnostic(Location?.ToLocation() ?? Microsoft.CodeAnalysis.Location.None);

    public Diagnostic ToDiagnostic(Microsoft.CodeAnalysis.Location location)
    {
        var args = new object[Arguments.Length];
        for (int i = 0; i < args.Length; i++) args[i] = Arguments[i];
        ImmutableDictionary<string, string?>? properties = null;
        if (Properties.Length > 0)
        {
            ImmutableDictionary<string, string?>.Builder builder = ImmutableDictionary.CreateBuilder<string, string?>();
            foreach (DiagnosticProperty property in Properties) builder[property.Name] = property.Value;
            properties = builder.ToImmutable();
        }
        return Diagnostic.Create(Descriptor, location, properties, args);
    }
}

/// <summary>
/// A diagnostic with the syntax tree its location is in (null when none of the compilation's trees has its path), so
/// that it is reported at a source location. Compares the tree by reference: equal while the file is not edited.
/// </summary>
internal sealed record SourceDiagnostic(DiagnosticInfo Info, SyntaxTree? Tree)
{
    public static Model.EquatableArray<SourceDiagnostic> Locate(ImmutableArray<DiagnosticInfo> diagnostics, Compilation compilation)
    {
        if (diagnostics.IsEmpty) return Model.EquatableArray<SourceDiagnostic>.Empty;
        var located = new SourceDiagnostic[diagnostics.Length];
        for (int i = 0; i < located.Length; i++)
        {
            SyntaxTree? tree = null;
            string? path = diagnostics[i].Location?.FilePath;
            foreach (SyntaxTree candidate in compilation.SyntaxTrees)
            {
                if (candidate.FilePath == path) { tree = candidate; break; }
            }
            located[i] = new SourceDiagnostic(diagnostics[i], tree);
        }
        return Model.EquatableArray.ToEquatableArray(located);
    }

    public Diagnostic ToDiagnostic() => Tree is null || Info.Location is null
        ? Info.ToDiagnostic()
        : Info.ToDiagnostic(Microsoft.CodeAnalysis.Location.Create(Tree, Info.Location.TextSpan));
}
