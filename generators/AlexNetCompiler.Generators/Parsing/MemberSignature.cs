using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AlexNetCompiler.Generators.Parsing;

/// <summary>
/// What C# compares when two methods (or constructors) of one name meet in a class: the number of type parameters
/// and each parameter's type and whether it is by reference; not names, return types, nullable reference annotations
/// or which of ref, out and in. Read from symbols for the user's members and from the generated text for the
/// generated ones, so both sides must give the same text for the same signature: types fully qualified with
/// "global::" and their metadata names (System.Int32, not int), a method's type parameters by position ("!!0").
/// </summary>
internal static class MemberSignature
{
    public static string Of(IMethodSymbol method) =>
        Format(method.TypeParameters.Length, method.Parameters.Select(p => (p.RefKind != RefKind.None, TypeOf(p.Type))));

    public static string Of(BaseMethodDeclarationSyntax method)
    {
        List<string> typeParameters = method is MethodDeclarationSyntax { TypeParameterList: { } list }
            ? list.Parameters.Select(p => p.Identifier.ValueText).ToList()
            : new List<string>();
        return Format(typeParameters.Count, method.ParameterList.Parameters.Select(p => (IsByReference(p), p.Type is null ? "" : TypeOf(p.Type, typeParameters))));
    }

    private static string Format(int typeParameterCount, IEnumerable<(bool ByReference, string Type)> parameters) =>
        (typeParameterCount > 0 ? "<" + typeParameterCount + ">" : "") +
        "(" + string.Join(", ", parameters.Select(p => (p.ByReference ? "ref " : "") + p.Type)) + ")";

    private static bool IsByReference(ParameterSyntax parameter) =>
        parameter.Modifiers.Any(m => m.IsKind(SyntaxKind.RefKeyword) || m.IsKind(SyntaxKind.OutKeyword) || m.IsKind(SyntaxKind.InKeyword));

    private static string TypeOf(ITypeSymbol type) => type switch
    {
        ITypeParameterSymbol { TypeParameterKind: TypeParameterKind.Method } parameter => "!!" + parameter.Ordinal,
        ITypeParameterSymbol parameter => parameter.Name,
        IArrayTypeSymbol array => TypeOf(array.ElementType) + "[" + new string(',', array.Rank - 1) + "]",
        IPointerTypeSymbol pointer => TypeOf(pointer.PointedAtType) + "*",
        IDynamicTypeSymbol => "global::System.Object",
        INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } nullable => TypeOf(nullable.TypeArguments[0]) + "?",
        INamedTypeSymbol named => NameOf(named),
        _ => type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat),
    };

    private static string NameOf(INamedTypeSymbol type)
    {
        string outer = type.ContainingType is { } containing ? NameOf(containing) + "."
            : type.ContainingNamespace is { IsGlobalNamespace: false } ns ? "global::" + ns.ToDisplayString() + "."
            : "global::";
        string arguments = type.TypeArguments.Length == 0 ? "" : "<" + string.Join(", ", type.TypeArguments.Select(TypeOf)) + ">";
        return outer + type.Name + arguments;
    }

    private static string TypeOf(TypeSyntax type, List<string> typeParameters) => type switch
    {
        PredefinedTypeSyntax predefined => "global::System." + MetadataName(predefined.Keyword.Kind()),
        // T? is Nullable<T> only for a value type; on a reference type it is an annotation, no part of the signature.
        // Generated code writes its nullable value types with keywords (ulong?), so the keyword tells which.
        NullableTypeSyntax { ElementType: PredefinedTypeSyntax element } nullable when IsValueType(element.Keyword.Kind()) =>
            TypeOf(nullable.ElementType, typeParameters) + "?",
        NullableTypeSyntax nullable => TypeOf(nullable.ElementType, typeParameters),
        ArrayTypeSyntax array => TypeOf(array.ElementType, typeParameters) +
            string.Concat(array.RankSpecifiers.Select(r => "[" + new string(',', r.Rank - 1) + "]")),
        PointerTypeSyntax pointer => TypeOf(pointer.ElementType, typeParameters) + "*",
        AliasQualifiedNameSyntax alias => alias.Alias.Identifier.ValueText + "::" + TypeOf(alias.Name, typeParameters),
        QualifiedNameSyntax qualified => TypeOf(qualified.Left, typeParameters) + "." + TypeOf(qualified.Right, typeParameters),
        GenericNameSyntax generic => generic.Identifier.ValueText +
            "<" + string.Join(", ", generic.TypeArgumentList.Arguments.Select(a => TypeOf(a, typeParameters))) + ">",
        IdentifierNameSyntax name when typeParameters.IndexOf(name.Identifier.ValueText) is var position && position >= 0 => "!!" + position,
        IdentifierNameSyntax name => name.Identifier.ValueText,
        _ => type.ToString(),
    };

    private static bool IsValueType(SyntaxKind keyword) =>
        keyword is not (SyntaxKind.ObjectKeyword or SyntaxKind.StringKeyword or SyntaxKind.VoidKeyword);

    // The C# keywords for System types.
    private static string MetadataName(SyntaxKind keyword) => keyword switch
    {
        SyntaxKind.BoolKeyword => "Boolean",
        SyntaxKind.ByteKeyword => "Byte",
        SyntaxKind.SByteKeyword => "SByte",
        SyntaxKind.CharKeyword => "Char",
        SyntaxKind.DecimalKeyword => "Decimal",
        SyntaxKind.DoubleKeyword => "Double",
        SyntaxKind.FloatKeyword => "Single",
        SyntaxKind.IntKeyword => "Int32",
        SyntaxKind.UIntKeyword => "UInt32",
        SyntaxKind.LongKeyword => "Int64",
        SyntaxKind.ULongKeyword => "UInt64",
        SyntaxKind.ShortKeyword => "Int16",
        SyntaxKind.UShortKeyword => "UInt16",
        SyntaxKind.ObjectKeyword => "Object",
        SyntaxKind.StringKeyword => "String",
        _ => "Void",
    };
}
