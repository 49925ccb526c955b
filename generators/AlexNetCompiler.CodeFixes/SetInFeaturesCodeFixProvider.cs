using System.Collections.Immutable;
using System.Globalization;
using System.Threading.Tasks;
using AlexNetCompiler.Generators.Diagnostics;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AlexNetCompiler.CodeFixes;

/// <summary>ANC0015: sets a Dense layer's InFeatures to the flattened size of the previous output, which the generator inferred.</summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(SetInFeaturesCodeFixProvider))]
public sealed class SetInFeaturesCodeFixProvider : CodeFixProvider
{
    public const string EquivalenceKey = Generators.Diagnostics.FixableDiagnosticIds.DenseInFeaturesMismatch + ":SetInferredInFeatures";

    public override ImmutableArray<string> FixableDiagnosticIds => ImmutableArray.Create(Generators.Diagnostics.FixableDiagnosticIds.DenseInFeaturesMismatch);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        SyntaxNode? root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null) return;
        foreach (Diagnostic diagnostic in context.Diagnostics)
        {
            if (!diagnostic.Properties.TryGetValue(DiagnosticPropertyNames.InferredInFeatures, out string? text)
                || !int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int inferred)) continue;
            // The generator reports ANC0015 at the InFeatures argument.
            AttributeArgumentSyntax? argument = root.FindNode(diagnostic.Location.SourceSpan).FirstAncestorOrSelf<AttributeArgumentSyntax>();
            if (argument?.NameEquals?.Name.Identifier.ValueText != "InFeatures") continue;
            Document document = context.Document;
            context.RegisterCodeFix(
                CodeAction.Create(
                    $"Set InFeatures to {inferred}",
                    _ =>
                    {
                        LiteralExpressionSyntax value = SyntaxFactory.LiteralExpression(SyntaxKind.NumericLiteralExpression, SyntaxFactory.Literal(inferred));
                        return Task.FromResult(document.WithSyntaxRoot(root.ReplaceNode(argument.Expression, value.WithTriviaFrom(argument.Expression))));
                    },
                    EquivalenceKey),
                diagnostic);
        }
    }
}
