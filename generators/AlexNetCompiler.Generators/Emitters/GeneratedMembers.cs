using System.Collections.Generic;
using System.Linq;
using AlexNetCompiler.Generators.Model;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AlexNetCompiler.Generators.Emitters;

/// <summary>
/// The members the generated files add to a network class, read back from the generated text itself, so that the
/// list can never drift from what the emitters print; and the user's members that collide with them.
/// </summary>
internal static class GeneratedMembers
{
    /// <summary>A generated member: its name and, for a method or constructor (".ctor"), its parameter count.</summary>
    internal readonly record struct Member(string Name, bool IsMethod, int ParameterCount);

    public static List<Member> Declared(string className, IEnumerable<string> sources)
    {
        var members = new List<Member>();
        foreach (string source in sources)
        {
            foreach (TypeDeclarationSyntax type in CSharpSyntaxTree.ParseText(source).GetRoot().DescendantNodes().OfType<TypeDeclarationSyntax>())
            {
                if (type.Identifier.ValueText != className.TrimStart('@')) continue;
                foreach (MemberDeclarationSyntax member in type.Members) members.AddRange(Of(member));
            }
        }
        return members;
    }

    private static IEnumerable<Member> Of(MemberDeclarationSyntax member) => member switch
    {
        BaseFieldDeclarationSyntax field => field.Declaration.Variables.Select(v => new Member(v.Identifier.ValueText, false, 0)),
        PropertyDeclarationSyntax property => new[] { new Member(property.Identifier.ValueText, false, 0) },
        EventDeclarationSyntax e => new[] { new Member(e.Identifier.ValueText, false, 0) },
        MethodDeclarationSyntax method => new[] { new Member(method.Identifier.ValueText, true, method.ParameterList.Parameters.Count) },
        // A static constructor cannot collide with an instance one.
        ConstructorDeclarationSyntax constructor when !constructor.Modifiers.Any(m => m.ValueText == "static") =>
            new[] { new Member(".ctor", true, constructor.ParameterList.Parameters.Count) },
        ConstructorDeclarationSyntax => System.Array.Empty<Member>(),
        BaseTypeDeclarationSyntax nested => new[] { new Member(nested.Identifier.ValueText, false, 0) },
        _ => System.Array.Empty<Member>(),
    };

    /// <summary>
    /// The user's members that C# would reject next to the generated ones: any two members of one name, except two
    /// methods with different parameter counts (overloads; a generated constructor is only matched by one of the same count).
    /// </summary>
    public static List<(UserMember User, Member Generated)> Collisions(IReadOnlyList<Member> generated, EquatableArray<UserMember> user)
    {
        var collisions = new List<(UserMember, Member)>();
        foreach (UserMember u in user)
        {
            foreach (Member g in generated)
            {
                if (g.Name != u.Name) continue;
                if (g.IsMethod && u.IsMethod && g.ParameterCount != u.ParameterCount) continue;
                collisions.Add((u, g));
                break;
            }
        }
        return collisions;
    }
}
