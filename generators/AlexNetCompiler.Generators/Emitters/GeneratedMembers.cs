using System.Collections.Generic;
using System.Linq;
using AlexNetCompiler.Generators.Model;
using AlexNetCompiler.Generators.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AlexNetCompiler.Generators.Emitters;

/// <summary>
/// The members the generated files add to a network class, read back from the generated text itself, so that the
/// list can never drift from what the emitters print; and the user's names that collide with them.
/// </summary>
internal static class GeneratedMembers
{
    /// <summary>A generated member.</summary>
    /// <param name="Name">Its name (".ctor" for a constructor).</param>
    /// <param name="Kind">Member, Method or Constructor.</param>
    /// <param name="Signature">For a method or constructor, its <see cref="MemberSignature"/>; otherwise "".</param>
    /// <param name="Description">How a diagnostic names it, e.g. "constant 'ParameterCount'".</param>
    internal readonly record struct Member(string Name, MemberKind Kind, string Signature, string Description);

    public static List<Member> Declared(string className, IEnumerable<string> sources)
    {
        var members = new List<Member>();
        foreach (string source in sources)
        {
            foreach (TypeDeclarationSyntax type in CSharpSyntaxTree.ParseText(source).GetRoot().DescendantNodes().OfType<TypeDeclarationSyntax>())
            {
                if (type.Identifier.ValueText != className.TrimStart('@')) continue;
                foreach (MemberDeclarationSyntax member in type.Members) members.AddRange(Of(member, type.Identifier.ValueText));
            }
        }
        return members;
    }

    private static IEnumerable<Member> Of(MemberDeclarationSyntax member, string className) => member switch
    {
        BaseFieldDeclarationSyntax field => field.Declaration.Variables.Select(v => Named(v.Identifier.ValueText,
            field.Modifiers.Any(m => m.IsKind(SyntaxKind.ConstKeyword)) ? "constant" : field is EventFieldDeclarationSyntax ? "event" : "field")),
        PropertyDeclarationSyntax property => new[] { Named(property.Identifier.ValueText, "property") },
        EventDeclarationSyntax e => new[] { Named(e.Identifier.ValueText, "event") },
        MethodDeclarationSyntax method => new[]
        {
            new Member(method.Identifier.ValueText, MemberKind.Method, MemberSignature.Of(method),
                $"method '{method.Identifier.ValueText}{method.TypeParameterList}{ParameterDisplay(method.ParameterList)}'"),
        },
        ConstructorDeclarationSyntax constructor => new[]
        {
            new Member(".ctor", MemberKind.Constructor, MemberSignature.Of(constructor), $"constructor '{className}{ParameterDisplay(constructor.ParameterList)}'"),
        },
        BaseTypeDeclarationSyntax nested => new[] { Named(nested.Identifier.ValueText, "type") },
        _ => System.Array.Empty<Member>(),
    };

    private static Member Named(string name, string what) => new(name, MemberKind.Member, "", $"{what} '{name}'");

    // "(ReadOnlySpan<float>, int, Span<float>)": the parameter types as a user would write them, unqualified.
    private static string ParameterDisplay(ParameterListSyntax parameters) =>
        "(" + string.Join(", ", parameters.Parameters.Select(p => string.Concat(p.Modifiers.Select(m => m.Text + " ")) + (p.Type is null ? "" : TypeDisplay(p.Type)))) + ")";

    private static string TypeDisplay(TypeSyntax type) => type switch
    {
        QualifiedNameSyntax qualified => TypeDisplay(qualified.Right),
        AliasQualifiedNameSyntax alias => TypeDisplay(alias.Name),
        GenericNameSyntax generic => generic.Identifier.ValueText + "<" + string.Join(", ", generic.TypeArgumentList.Arguments.Select(TypeDisplay)) + ">",
        NullableTypeSyntax nullable => TypeDisplay(nullable.ElementType) + "?",
        ArrayTypeSyntax array => TypeDisplay(array.ElementType) + string.Concat(array.RankSpecifiers.Select(r => r.ToString())),
        _ => type.ToString(),
    };

    /// <summary>
    /// The user's names that C# would reject beside the generated members, each with the first generated member it
    /// meets: one name for two members (CS0102), two methods or constructors of one signature (CS0111), a member
    /// named like its class (CS0542), a constructor beside a primary constructor (CS8862), a member hiding an
    /// inherited one (CS0108). Methods of one name with other parameter types are overloads and live side by side.
    /// </summary>
    public static List<MemberCollision> Collisions(IReadOnlyList<Member> generated, EquatableArray<UserMemberName> user)
    {
        var collisions = new List<MemberCollision>();
        foreach (UserMemberName u in user)
        {
            foreach (Member g in generated)
            {
                if (!Collide(u, g)) continue;
                collisions.Add(new MemberCollision(u, g.Description));
                break;
            }
        }
        return collisions;
    }

    private static bool Collide(UserMemberName user, Member generated) => user.Kind switch
    {
        MemberKind.ClassName => generated.Kind != MemberKind.Constructor && generated.Name == user.Name,
        MemberKind.PrimaryConstructor => generated.Kind == MemberKind.Constructor,
        MemberKind.Method => generated.Name == user.Name && (generated.Kind != MemberKind.Method || generated.Signature == user.Signature),
        MemberKind.Constructor => generated.Kind == MemberKind.Constructor && generated.Signature == user.Signature,
        _ => generated.Name == user.Name,
    };
}
