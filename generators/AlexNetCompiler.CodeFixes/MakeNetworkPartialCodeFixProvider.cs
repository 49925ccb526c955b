using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using AlexNetCompiler.Generators.Diagnostics;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AlexNetCompiler.CodeFixes;

/// <summary>ANC0002: adds <c>partial</c> to every declaration of the network class that lacks it.</summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(MakeNetworkPartialCodeFixProvider))]
public sealed class MakeNetworkPartialCodeFixProvider : CodeFixProvider
{
    public const string EquivalenceKey = Generators.Diagnostics.FixableDiagnosticIds.NetworkNotPartial + ":MakePartial";

    public override ImmutableArray<string> FixableDiagnosticIds => ImmutableArray.Create(Generators.Diagnostics.FixableDiagnosticIds.NetworkNotPartial);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        SyntaxNode? root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null) return;
        foreach (Diagnostic diagnostic in context.Diagnostics)
        {
            // The generator reports ANC0002 at the identifier of a declaration without 'partial'.
            if (root.FindToken(diagnostic.Location.SourceSpan.Start).Parent is not TypeDeclarationSyntax declaration) continue;
            if (declaration.Modifiers.Any(SyntaxKind.PartialKeyword)) continue;
            Document document = context.Document;
            context.RegisterCodeFix(
                CodeAction.Create(
                    $"Make class '{declaration.Identifier.ValueText}' partial",
                    cancellationToken => MakePartialAsync(document, declaration, cancellationToken),
                    EquivalenceKey),
                diagnostic);
        }
    }

    private static async Task<Solution> MakePartialAsync(Document document, TypeDeclarationSyntax declaration, CancellationToken cancellationToken)
    {
        var parts = (await AttributeEdits.AllDeclarationsAsync(document, declaration, cancellationToken).ConfigureAwait(false))
            .Where(part => !part.Declaration.Modifiers.Any(SyntaxKind.PartialKeyword));
        return await AttributeEdits.ReplaceNodesAsync(document.Project.Solution, parts, AddPartial, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Adds 'partial' as the last modifier, where C# requires it (right before 'class').</summary>
    private static TypeDeclarationSyntax AddPartial(TypeDeclarationSyntax declaration)
    {
        SyntaxToken partial = SyntaxFactory.Token(SyntaxKind.PartialKeyword).WithTrailingTrivia(SyntaxFactory.Space);
        if (declaration.Modifiers.Count > 0) return declaration.WithModifiers(declaration.Modifiers.Add(partial));
        // No modifiers: the keyword's leading trivia (the line's indentation) moves to 'partial'.
        SyntaxToken keyword = declaration.Keyword;
        return declaration
            .WithKeyword(keyword.WithLeadingTrivia())
            .WithModifiers(SyntaxFactory.TokenList(partial.WithLeadingTrivia(keyword.LeadingTrivia)));
    }
}
