using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using AlexNetCompiler.Generators.Diagnostics;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AlexNetCompiler.CodeFixes;

/// <summary>
/// ANC0013: two fixes, with the sizes the generator computed. "Change the network input" sets [Network]'s Height and
/// Width to the smallest input at which no layer the input reaches drops real input (one size per network, so fixing
/// every ANC0013 at once changes it once). "Set Padding" pads the layer just enough that only padding is left unread.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(TileInputCodeFixProvider))]
public sealed class TileInputCodeFixProvider : CodeFixProvider
{
    public const string ChangeInputEquivalenceKey = Generators.Diagnostics.FixableDiagnosticIds.StrideDropsInput + ":ChangeNetworkInput";
    public const string SetPaddingEquivalenceKey = Generators.Diagnostics.FixableDiagnosticIds.StrideDropsInput + ":SetPadding";

    public override ImmutableArray<string> FixableDiagnosticIds => ImmutableArray.Create(Generators.Diagnostics.FixableDiagnosticIds.StrideDropsInput);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        SyntaxNode? root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null) return;
        Document document = context.Document;
        foreach (Diagnostic diagnostic in context.Diagnostics)
        {
            // The generator reports ANC0013 at the layer attribute.
            AttributeSyntax? layer = root.FindNode(diagnostic.Location.SourceSpan).FirstAncestorOrSelf<AttributeSyntax>();
            TypeDeclarationSyntax? network = layer?.FirstAncestorOrSelf<TypeDeclarationSyntax>();
            if (layer is null || network is null) continue;

            if (TryGetInt(diagnostic, DiagnosticPropertyNames.TilingInputHeight, out int height)
                && TryGetInt(diagnostic, DiagnosticPropertyNames.TilingInputWidth, out int width))
            {
                context.RegisterCodeFix(
                    CodeAction.Create(
                        $"Change the network input to {height}x{width} (Height = {height}, Width = {width})",
                        cancellationToken => ChangeInputAsync(document, network, height, width, cancellationToken),
                        ChangeInputEquivalenceKey),
                    diagnostic);
            }

            if (diagnostic.Properties.TryGetValue(DiagnosticPropertyNames.TilingPaddingArguments, out string? padding)
                && ParseArguments(padding) is { Count: > 0 } arguments)
            {
                string layerName = layer.Name.ToString();
                string changes = string.Join(", ", arguments.Select(a => $"{a.Name} = {a.Value}"));
                context.RegisterCodeFix(
                    CodeAction.Create(
                        $"Set {changes} on this {layerName}",
                        _ => Task.FromResult(document.WithSyntaxRoot(root.ReplaceNode(layer, SetArguments(layer, arguments)))),
                        SetPaddingEquivalenceKey),
                    diagnostic);
            }
        }
    }

    private static async Task<Solution> ChangeInputAsync(Document document, TypeDeclarationSyntax network, int height, int width, CancellationToken cancellationToken)
    {
        // [Network] may sit on another partial declaration than the layers; bind the attributes to find it.
        var networkAttributes = new List<(Document, AttributeSyntax)>();
        foreach ((Document owner, TypeDeclarationSyntax declaration) in await AttributeEdits.AllDeclarationsAsync(document, network, cancellationToken).ConfigureAwait(false))
        {
            SemanticModel? model = await owner.GetSemanticModelAsync(cancellationToken).ConfigureAwait(false);
            if (model is null) continue;
            foreach (AttributeSyntax attribute in declaration.AttributeLists.SelectMany(list => list.Attributes))
            {
                if (model.GetSymbolInfo(attribute, cancellationToken).Symbol?.ContainingType?.ToDisplayString() == AttributeEdits.NetworkAttributeName)
                {
                    networkAttributes.Add((owner, attribute));
                }
            }
        }
        return await AttributeEdits.ReplaceNodesAsync(
            document.Project.Solution, networkAttributes,
            attribute => AttributeEdits.WithNamedArgument(AttributeEdits.WithNamedArgument(attribute, "Height", height), "Width", width),
            cancellationToken).ConfigureAwait(false);
    }

    private static AttributeSyntax SetArguments(AttributeSyntax layer, IReadOnlyList<(string Name, int Value)> arguments)
    {
        foreach ((string name, int value) in arguments) layer = AttributeEdits.WithNamedArgument(layer, name, value);
        return layer;
    }

    /// <summary>Reads "Padding=2" or "PaddingHeight=1;PaddingWidth=2" (DiagnosticPropertyNames.TilingPaddingArguments).</summary>
    private static List<(string Name, int Value)> ParseArguments(string? text)
    {
        var arguments = new List<(string, int)>();
        if (string.IsNullOrEmpty(text)) return arguments;
        foreach (string pair in text!.Split(';'))
        {
            string[] parts = pair.Split('=');
            if (parts.Length != 2 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int value)) return new List<(string, int)>();
            arguments.Add((parts[0], value));
        }
        return arguments;
    }

    private static bool TryGetInt(Diagnostic diagnostic, string name, out int value)
    {
        value = 0;
        return diagnostic.Properties.TryGetValue(name, out string? text)
            && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }
}
