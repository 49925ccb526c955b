using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AlexNetCompiler.CodeFixes;

/// <summary>Syntax edits the fixes share: setting a named attribute argument, finding the network's declarations.</summary>
internal static class AttributeEdits
{
    public const string NetworkAttributeName = "AlexNetCompiler.NetworkAttribute";

    /// <summary>Sets <c>name = value</c> on the attribute: replaces the value where the argument is written, else appends it.</summary>
    public static AttributeSyntax WithNamedArgument(AttributeSyntax attribute, string name, int value)
    {
        LiteralExpressionSyntax literal = SyntaxFactory.LiteralExpression(SyntaxKind.NumericLiteralExpression, SyntaxFactory.Literal(value));
        AttributeArgumentListSyntax list = attribute.ArgumentList ?? SyntaxFactory.AttributeArgumentList();
        foreach (AttributeArgumentSyntax argument in list.Arguments)
        {
            if (argument.NameEquals?.Name.Identifier.ValueText == name)
            {
                return attribute.ReplaceNode(argument.Expression, literal.WithTriviaFrom(argument.Expression));
            }
        }

        AttributeArgumentSyntax added = SyntaxFactory.AttributeArgument(
            SyntaxFactory.NameEquals(
                SyntaxFactory.IdentifierName(name).WithTrailingTrivia(SyntaxFactory.Space),
                SyntaxFactory.Token(SyntaxKind.EqualsToken).WithTrailingTrivia(SyntaxFactory.Space)),
            nameColon: null,
            literal);
        SyntaxNodeOrTokenList items = list.Arguments.GetWithSeparators();
        if (items.Count > 0) items = items.Add(SyntaxFactory.Token(SyntaxKind.CommaToken).WithTrailingTrivia(SyntaxFactory.Space));
        items = items.Add(added);
        return attribute.WithArgumentList(list.WithArguments(SyntaxFactory.SeparatedList<AttributeArgumentSyntax>(items)));
    }

    /// <summary>Every declaration of the class that <paramref name="declaration"/> declares, with its document (a partial class may span files).</summary>
    public static async Task<IReadOnlyList<(Document Document, TypeDeclarationSyntax Declaration)>> AllDeclarationsAsync(
        Document document, TypeDeclarationSyntax declaration, CancellationToken cancellationToken)
    {
        SemanticModel? model = await document.GetSemanticModelAsync(cancellationToken).ConfigureAwait(false);
        if (model?.GetDeclaredSymbol(declaration, cancellationToken) is not INamedTypeSymbol type) return new[] { (document, declaration) };
        var declarations = new List<(Document, TypeDeclarationSyntax)>();
        foreach (SyntaxReference reference in type.DeclaringSyntaxReferences)
        {
            Document? owner = document.Project.Solution.GetDocument(reference.SyntaxTree);
            if (owner is not null && await reference.GetSyntaxAsync(cancellationToken).ConfigureAwait(false) is TypeDeclarationSyntax part)
            {
                declarations.Add((owner, part));
            }
        }
        return declarations;
    }

    /// <summary>Replaces each node with its edited form, document by document, in one solution.</summary>
    public static async Task<Solution> ReplaceNodesAsync<TNode>(
        Solution solution, IEnumerable<(Document Document, TNode Node)> nodes, System.Func<TNode, TNode> edit, CancellationToken cancellationToken)
        where TNode : SyntaxNode
    {
        foreach (IGrouping<DocumentId, (Document Document, TNode Node)> group in nodes.GroupBy(n => n.Document.Id))
        {
            Document document = solution.GetDocument(group.Key)!;
            SyntaxNode? root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
            if (root is null) continue;
            SyntaxNode edited = root.ReplaceNodes(group.Select(n => n.Node), (original, _) => edit(original));
            solution = solution.WithDocumentSyntaxRoot(group.Key, edited);
        }
        return solution;
    }
}
