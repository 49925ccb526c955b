using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using AlexNetCompiler.Generators.Diagnostics;
using AlexNetCompiler.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AlexNetCompiler.Generators.Parsing;

/// <summary>
/// Reads a [Network] class and its layer attributes into a <see cref="NetworkSpec"/>: the values as written and
/// where they were written. Checks only what needs symbols or syntax (partial, generic, nesting, attribute
/// placement); everything about sizes and order is checked later by <see cref="Inference.ShapeInference"/>.
/// </summary>
internal static class NetworkParser
{
    public const string NetworkAttributeName = "AlexNetCompiler.NetworkAttribute";
    private const string AttributeNamespace = "AlexNetCompiler";

    public static bool IsCandidate(SyntaxNode node, CancellationToken _) =>
        node is ClassDeclarationSyntax or RecordDeclarationSyntax;

    public static NetworkSpec? Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        if (context.TargetSymbol is not INamedTypeSymbol type || context.TargetNode is not TypeDeclarationSyntax declaration)
        {
            return null;
        }

        try
        {
            if (!IsFirstNetworkAttribute(type, declaration)) return null;
            return ParseCore(type, declaration, context.Attributes, context.SemanticModel.Compilation, cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // The generator must never throw: report the failure against the class instead.
            LocationInfo? location = LocationInfo.From(declaration.Identifier);
            var diagnostic = DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, location,
                type.ToDisplayString(), exception.GetType().Name + ": " + exception.Message);
            return new NetworkSpec(
                Namespace: "", ClassName: type.Name, DisplayName: type.ToDisplayString(), Accessibility: "",
                ContainingTypes: EquatableArray<ContainingTypeModel>.Empty, ClassLocation: location,
                NetworkAttributeLocation: null, NetworkArguments: EquatableArray<ArgumentLocation>.Empty,
                Channels: 0, Height: 0, Width: 0, Layers: EquatableArray<LayerSpec>.Empty,
                Diagnostics: new[] { diagnostic }.ToEquatableArray(), HasCompilerErrors: false);
        }
    }

    // [Network] written twice is the compiler's error (CS0579); only the first occurrence makes a network,
    // so that two declarations never produce the same generated file.
    private static bool IsFirstNetworkAttribute(INamedTypeSymbol type, TypeDeclarationSyntax declaration)
    {
        SyntaxReference? first = null;
        foreach (AttributeData attribute in type.GetAttributes())
        {
            if (attribute.AttributeClass?.ToDisplayString() != NetworkAttributeName) continue;
            SyntaxReference? reference = attribute.ApplicationSyntaxReference;
            if (reference is null) continue;
            if (first is null || Compare(reference, first) < 0) first = reference;
        }
        return first is null || (first.SyntaxTree == declaration.SyntaxTree && declaration.Span.Contains(first.Span));
    }

    private static int Compare(SyntaxReference a, SyntaxReference b)
    {
        int byPath = string.CompareOrdinal(a.SyntaxTree.FilePath, b.SyntaxTree.FilePath);
        return byPath != 0 ? byPath : a.Span.Start.CompareTo(b.Span.Start);
    }

    private static NetworkSpec ParseCore(
        INamedTypeSymbol type, TypeDeclarationSyntax declaration, ImmutableArray<AttributeData> networkAttributes, Compilation compilation,
        CancellationToken cancellationToken)
    {
        var diagnostics = new List<DiagnosticInfo>();
        string displayName = type.ToDisplayString();
        LocationInfo? classLocation = LocationInfo.From(declaration.Identifier);

        CheckClassShape(type, declaration, displayName, classLocation, diagnostics);
        EquatableArray<ContainingTypeModel> containingTypes = ReadContainingTypes(type, displayName, classLocation, diagnostics);

        bool hasCompilerErrors = false;

        // [Network(Channels, Height, Width)]
        AttributeData network = networkAttributes[0];
        hasCompilerErrors |= HasErrors(network);
        var networkSyntax = network.ApplicationSyntaxReference?.GetSyntax(cancellationToken) as AttributeSyntax;
        int channels = LayerDefaults.NetworkChannels, height = 0, width = 0;
        foreach (KeyValuePair<string, TypedConstant> named in network.NamedArguments)
        {
            switch (named.Key)
            {
                case "Channels": channels = ToInt(named.Value); break;
                case "Height": height = ToInt(named.Value); break;
                case "Width": width = ToInt(named.Value); break;
            }
        }

        // Layer attributes, in the order written.
        var layers = new List<LayerSpec>();
        SyntaxNode? layerDeclaration = null;
        bool reportedSplit = false;
        foreach (AttributeData attribute in type.GetAttributes())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (attribute.AttributeClass is null || attribute.AttributeClass.TypeKind == TypeKind.Error)
            {
                // An attribute the compiler cannot bind (a typo, a missing using): the compiler reports it, and any
                // shape we inferred without that layer would only mislead.
                hasCompilerErrors = true;
                continue;
            }
            LayerKind? kind = LayerKindOf(attribute.AttributeClass);
            if (kind is null) continue;
            hasCompilerErrors |= HasErrors(attribute);

            var syntax = attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken) as AttributeSyntax;
            SyntaxNode? owner = syntax?.Parent?.Parent;
            if (owner is not null)
            {
                if (layerDeclaration is null)
                {
                    layerDeclaration = owner;
                }
                else if (owner != layerDeclaration && !reportedSplit)
                {
                    reportedSplit = true;
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.LayersSplitAcrossPartials, LocationInfo.From(syntax), displayName));
                }
            }
            layers.Add(ReadLayer(kind.Value, attribute, syntax));
        }

        return new NetworkSpec(
            Namespace: NamespaceOf(type),
            ClassName: EscapeIdentifier(type.Name),
            DisplayName: displayName,
            Accessibility: AccessibilityText(type.DeclaredAccessibility),
            ContainingTypes: containingTypes,
            ClassLocation: classLocation,
            NetworkAttributeLocation: LocationInfo.From(networkSyntax),
            NetworkArguments: ReadArgumentLocations(network, networkSyntax),
            Channels: channels,
            Height: height,
            Width: width,
            Layers: layers.ToEquatableArray(),
            Diagnostics: diagnostics.ToEquatableArray(),
            HasCompilerErrors: hasCompilerErrors,
            Members: ReadUserMembers(type, classLocation, compilation, cancellationToken));
    }

    // Types and parameters as the user would write them (float[], CpuContext?), for diagnostics.
    private static readonly SymbolDisplayFormat MemberDisplay = new(
        typeQualificationStyle: SymbolDisplayTypeQualificationStyle.NameOnly,
        genericsOptions: SymbolDisplayGenericsOptions.IncludeTypeParameters,
        memberOptions: SymbolDisplayMemberOptions.IncludeParameters,
        parameterOptions: SymbolDisplayParameterOptions.IncludeType | SymbolDisplayParameterOptions.IncludeParamsRefOut,
        miscellaneousOptions: SymbolDisplayMiscellaneousOptions.UseSpecialTypes | SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    /// <summary>
    /// Every name of the user's that a generated member could collide with, as plain strings and locations (no
    /// symbols in the model): the class's own name, its members in every part, a primary constructor, and what it
    /// inherits from its base classes.
    /// </summary>
    private static EquatableArray<UserMember> ReadUserMembers(
        INamedTypeSymbol type, LocationInfo? classLocation, Compilation compilation, CancellationToken cancellationToken)
    {
        var members = new List<UserMember> { new(new UserMemberName(type.Name, MemberKind.ClassName, "", type.Name, ""), classLocation) };
        foreach (ISymbol member in type.GetMembers())
        {
            if (member is IMethodSymbol { MethodKind: MethodKind.Constructor } constructor && PrimaryParameterList(constructor, cancellationToken) is { } parameters)
            {
                var name = new UserMemberName(".ctor", MemberKind.PrimaryConstructor, MemberSignature.Of(constructor), constructor.ToDisplayString(MemberDisplay), "");
                members.Add(new UserMember(name, LocationInfo.From(parameters)));
            }
            else if (!member.IsImplicitlyDeclared && MemberNameOf(member, inheritedFrom: "") is { } name &&
                member.Locations.FirstOrDefault(l => l.IsInSource) is { } location)
            {
                members.Add(new UserMember(name, LocationInfo.From(location)));
            }
        }

        // A generated member of an inherited name hides it (CS0108, a warning in generated code); the collision is
        // reported at the base class in the class's base list, which is where the user chose it.
        if (type.BaseType is { SpecialType: not SpecialType.System_Object } direct)
        {
            LocationInfo? baseLocation = BaseTypeLocation(type, direct, compilation, cancellationToken) ?? classLocation;
            var seen = new HashSet<(string, string)>();
            for (INamedTypeSymbol? b = direct; b is not null && b.SpecialType != SpecialType.System_Object; b = b.BaseType)
            {
                string inheritedFrom = b.ToDisplayString();
                foreach (ISymbol member in b.GetMembers())
                {
                    if (member.IsImplicitlyDeclared || member is IMethodSymbol { MethodKind: MethodKind.Constructor }) continue;
                    if (!compilation.IsSymbolAccessibleWithin(member, type)) continue;
                    if (MemberNameOf(member, inheritedFrom) is { } name && seen.Add((name.Name, name.Signature)))
                    {
                        members.Add(new UserMember(name, baseLocation));
                    }
                }
            }
        }
        return members.ToEquatableArray();
    }

    // Accessors, operators, indexers and explicit interface implementations have names no generated member can have.
    private static UserMemberName? MemberNameOf(ISymbol member, string inheritedFrom)
    {
        if (member is IMethodSymbol method)
        {
            MemberKind? kind = method.MethodKind switch
            {
                MethodKind.Ordinary => MemberKind.Method,
                MethodKind.Constructor => MemberKind.Constructor,
                _ => null,
            };
            return kind is null ? null : new UserMemberName(method.MethodKind == MethodKind.Constructor ? ".ctor" : method.Name, kind.Value,
                MemberSignature.Of(method), method.ToDisplayString(MemberDisplay), inheritedFrom);
        }
        if (member.Name.Contains(".") || member is IPropertySymbol { IsIndexer: true }) return null;
        return new UserMemberName(member.Name, MemberKind.Member, "", member.Name, inheritedFrom);
    }

    // A primary constructor is declared by the parameter list of the type declaration itself.
    private static ParameterListSyntax? PrimaryParameterList(IMethodSymbol constructor, CancellationToken cancellationToken)
    {
        foreach (SyntaxReference reference in constructor.DeclaringSyntaxReferences)
        {
            if (reference.GetSyntax(cancellationToken) is TypeDeclarationSyntax { ParameterList: { } parameters }) return parameters;
        }
        return null;
    }

    private static LocationInfo? BaseTypeLocation(INamedTypeSymbol type, INamedTypeSymbol baseType, Compilation compilation, CancellationToken cancellationToken)
    {
        foreach (SyntaxReference reference in type.DeclaringSyntaxReferences)
        {
            // A base class comes first in a base list.
            if (reference.GetSyntax(cancellationToken) is not TypeDeclarationSyntax { BaseList.Types: { Count: > 0 } types }) continue;
            TypeSyntax first = types[0].Type;
            ITypeSymbol? bound = compilation.GetSemanticModel(first.SyntaxTree).GetTypeInfo(first, cancellationToken).Type;
            if (SymbolEqualityComparer.Default.Equals(bound, baseType)) return LocationInfo.From(first);
        }
        return null;
    }

    private static void CheckClassShape(
        INamedTypeSymbol type, TypeDeclarationSyntax declaration, string displayName, LocationInfo? classLocation, List<DiagnosticInfo> diagnostics)
    {
        foreach (SyntaxReference reference in type.DeclaringSyntaxReferences)
        {
            if (reference.GetSyntax() is TypeDeclarationSyntax part && !part.Modifiers.Any(SyntaxKind.PartialKeyword))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NetworkNotPartial, LocationInfo.From(part.Identifier), displayName));
                break;
            }
        }
        if (type.IsRecord)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NetworkClassUnsupported, classLocation, displayName, "a record"));
        }
        if (type.TypeParameters.Length > 0)
        {
            LocationInfo? location = LocationInfo.From(declaration.TypeParameterList) ?? classLocation;
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NetworkClassUnsupported, location, displayName, "generic"));
        }
        if (type.IsStatic)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NetworkClassUnsupported, classLocation, displayName, "static"));
        }
        if (type.IsFileLocal)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NetworkClassUnsupported, classLocation, displayName, "file-local"));
        }
    }

    private static EquatableArray<ContainingTypeModel> ReadContainingTypes(
        INamedTypeSymbol type, string displayName, LocationInfo? classLocation, List<DiagnosticInfo> diagnostics)
    {
        var containing = new List<ContainingTypeModel>();
        for (INamedTypeSymbol? outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            bool partial = outer.DeclaringSyntaxReferences.All(r => r.GetSyntax() is TypeDeclarationSyntax t && t.Modifiers.Any(SyntaxKind.PartialKeyword));
            if (!partial || outer.TypeParameters.Length > 0 || outer.IsFileLocal)
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.ContainingTypeNotPartial, classLocation, displayName, outer.ToDisplayString()));
            }
            string keyword = outer.IsRecord
                ? (outer.TypeKind == TypeKind.Struct ? "record struct" : "record")
                : outer.TypeKind switch { TypeKind.Struct => "struct", TypeKind.Interface => "interface", _ => "class" };
            containing.Insert(0, new ContainingTypeModel(keyword, EscapeIdentifier(outer.Name)));
        }
        return containing.ToEquatableArray();
    }

    private static LayerKind? LayerKindOf(INamedTypeSymbol attributeClass)
    {
        if (attributeClass.ContainingNamespace is not { Name: AttributeNamespace } ns || !ns.ContainingNamespace.IsGlobalNamespace)
        {
            return null;
        }
        return attributeClass.Name switch
        {
            "Conv2dAttribute" => LayerKind.Conv2d,
            "ReluAttribute" => LayerKind.Relu,
            "LrnAttribute" => LayerKind.Lrn,
            "MaxPoolAttribute" => LayerKind.MaxPool,
            "AdaptiveAvgPoolAttribute" => LayerKind.AdaptiveAvgPool,
            "DropoutAttribute" => LayerKind.Dropout,
            "DenseAttribute" => LayerKind.Dense,
            "SoftmaxCrossEntropyAttribute" => LayerKind.SoftmaxCrossEntropy,
            _ => null,
        };
    }

    private static LayerSpec ReadLayer(LayerKind kind, AttributeData attribute, AttributeSyntax? syntax)
    {
        // Start from the attributes' own defaults (src/Common/LayerDefaults.cs, which the attributes use too).
        var spec = new LayerSpec(kind, Name: null, LocationInfo.From(syntax), ReadArgumentLocations(attribute, syntax),
            Stride: kind == LayerKind.Conv2d ? LayerDefaults.ConvStride : LayerDefaults.PoolStride);

        ImmutableArray<TypedConstant> positional = attribute.ConstructorArguments;
        if (positional.Length > 0)
        {
            spec = kind switch
            {
                LayerKind.Conv2d or LayerKind.Dense => spec with { Units = ToInt(positional[0]) },
                LayerKind.MaxPool => spec with { Kernel = ToInt(positional[0]) },
                LayerKind.AdaptiveAvgPool => spec with { OutputSize = ToInt(positional[0]) },
                LayerKind.Dropout => spec with { DropoutP = ToFloat(positional[0]) },
                _ => spec,
            };
        }

        foreach (KeyValuePair<string, TypedConstant> named in attribute.NamedArguments)
        {
            TypedConstant value = named.Value;
            spec = named.Key switch
            {
                "Name" => spec with { Name = value.Value as string },
                "Kernel" => spec with { Kernel = ToInt(value) },
                "KernelHeight" => spec with { KernelHeight = ToInt(value) },
                "KernelWidth" => spec with { KernelWidth = ToInt(value) },
                "Stride" => spec with { Stride = ToInt(value) },
                "StrideHeight" => spec with { StrideHeight = ToInt(value) },
                "StrideWidth" => spec with { StrideWidth = ToInt(value) },
                "Padding" => spec with { Padding = ToInt(value) },
                "PaddingHeight" => spec with { PaddingHeight = ToInt(value) },
                "PaddingWidth" => spec with { PaddingWidth = ToInt(value) },
                "Groups" => spec with { Groups = ToInt(value) },
                "Bias" => spec with { Bias = value.Value is bool b && b },
                "BiasInit" => spec with { BiasInit = ToFloat(value) },
                "InFeatures" => spec with { InFeatures = ToInt(value) },
                "Size" => spec with { LrnSize = ToInt(value) },
                "Alpha" => spec with { LrnAlpha = ToFloat(value) },
                "Beta" => spec with { LrnBeta = ToFloat(value) },
                "K" => spec with { LrnK = ToFloat(value) },
                "OutputHeight" => spec with { OutputHeight = ToInt(value) },
                "OutputWidth" => spec with { OutputWidth = ToInt(value) },
                _ => spec,
            };
        }
        return spec;
    }

    /// <summary>Maps each written argument to the attribute property it sets: "Stride = 4" to "Stride", a positional one to its parameter.</summary>
    private static EquatableArray<ArgumentLocation> ReadArgumentLocations(AttributeData attribute, AttributeSyntax? syntax)
    {
        if (syntax?.ArgumentList is not { } list) return EquatableArray<ArgumentLocation>.Empty;
        ImmutableArray<IParameterSymbol> parameters = attribute.AttributeConstructor?.Parameters ?? ImmutableArray<IParameterSymbol>.Empty;
        var locations = new List<ArgumentLocation>();
        int position = 0;
        foreach (AttributeArgumentSyntax argument in list.Arguments)
        {
            string? name;
            if (argument.NameEquals is { } nameEquals)
            {
                name = nameEquals.Name.Identifier.ValueText;
            }
            else if (argument.NameColon is { } nameColon)
            {
                name = ToPropertyName(nameColon.Name.Identifier.ValueText);
                position++;
            }
            else
            {
                name = position < parameters.Length ? ToPropertyName(parameters[position].Name) : null;
                position++;
            }
            LocationInfo? location = LocationInfo.From(argument);
            if (name is not null && location is not null) locations.Add(new ArgumentLocation(name, location));
        }
        return locations.ToEquatableArray();
    }

    // Constructor parameters are the camelCase form of the properties they set (outChannels -> OutChannels).
    private static string ToPropertyName(string parameterName) =>
        parameterName.Length == 0 ? parameterName : char.ToUpperInvariant(parameterName[0]) + parameterName.Substring(1);

    private static bool HasErrors(AttributeData attribute)
    {
        if (attribute.AttributeConstructor is null) return true;
        foreach (TypedConstant argument in attribute.ConstructorArguments)
        {
            if (argument.Kind == TypedConstantKind.Error) return true;
        }
        foreach (KeyValuePair<string, TypedConstant> named in attribute.NamedArguments)
        {
            if (named.Value.Kind == TypedConstantKind.Error) return true;
        }
        return false;
    }

    private static int ToInt(TypedConstant constant) => constant.Value switch
    {
        int i => i,
        _ => 0,
    };

    private static float ToFloat(TypedConstant constant) => constant.Value switch
    {
        float f => f,
        double d => (float)d,
        int i => i,
        _ => float.NaN,
    };

    private static string NamespaceOf(INamedTypeSymbol type)
    {
        var parts = new List<string>();
        for (INamespaceSymbol? ns = type.ContainingNamespace; ns is not null && !ns.IsGlobalNamespace; ns = ns.ContainingNamespace)
        {
            parts.Insert(0, EscapeIdentifier(ns.Name));
        }
        return string.Join(".", parts);
    }

    internal static string EscapeIdentifier(string name) =>
        SyntaxFacts.IsReservedKeyword(SyntaxFacts.GetKeywordKind(name)) ? "@" + name : name;

    private static string AccessibilityText(Accessibility accessibility) => accessibility switch
    {
        Accessibility.Public => "public",
        Accessibility.Internal => "internal",
        Accessibility.Private => "private",
        Accessibility.Protected => "protected",
        Accessibility.ProtectedOrInternal => "protected internal",
        Accessibility.ProtectedAndInternal => "private protected",
        _ => "",
    };
}
