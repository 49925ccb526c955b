using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using AlexNetCompiler.Generators.Diagnostics;
using AlexNetCompiler.Generators.Emitters;
using AlexNetCompiler.Generators.Inference;
using AlexNetCompiler.Generators.Lowering;
using AlexNetCompiler.Generators.Model;
using AlexNetCompiler.Generators.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace AlexNetCompiler.Generators;

/// <summary>
/// The incremental generator: [Network] classes -> <see cref="NetworkSpec"/> (parser) -> <see cref="NetworkResult"/>
/// (shape inference) -> an <see cref="ExecutionPlan"/> per backend (lowering) -> source files and diagnostics. Every
/// step's output is an equatable record, so an edit that does not touch a network's spec leaves its steps cached.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class NetworkGenerator : IIncrementalGenerator
{
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        IncrementalValuesProvider<NetworkSpec> specs = context.SyntaxProvider
            .ForAttributeWithMetadataName(NetworkParser.NetworkAttributeName, NetworkParser.IsCandidate, NetworkParser.Parse)
            .Where(static spec => spec is not null)
            .Select(static (spec, _) => spec!)
            .WithTrackingName(TrackingNames.NetworkSpecs);

        IncrementalValuesProvider<NetworkResult> results = specs
            .Select(static (spec, cancellationToken) => ShapeInference.Build(spec, cancellationToken))
            .WithTrackingName(TrackingNames.NetworkModels);

        // Lowering and printing, cached on the model: an edit that leaves the model alone reprints nothing.
        IncrementalValuesProvider<EmittedNetwork> emitted = results
            .Select(static (result, _) => EmittedNetwork.From(result))
            .WithTrackingName(TrackingNames.EmittedNetworks);

        // Where the user's members are: only read when one collides with a generated member. Kept out of the spec,
        // since every keystroke in the class body moves them.
        IncrementalValueProvider<ImmutableArray<MemberLocations>> locations = context.SyntaxProvider
            .ForAttributeWithMetadataName(NetworkParser.NetworkAttributeName, NetworkParser.IsCandidate, NetworkParser.ReadMemberLocations)
            .Collect();

        context.RegisterSourceOutput(emitted.Combine(locations), static (context, pair) => Output(context, pair.Left, pair.Right));
    }

    private static void Output(SourceProductionContext context, EmittedNetwork network, ImmutableArray<MemberLocations> locations)
    {
        foreach (DiagnosticInfo diagnostic in network.Diagnostics)
        {
            context.ReportDiagnostic(diagnostic.ToDiagnostic());
        }
        if (network.Collisions.Length > 0)
        {
            // Reported at the user's member; nothing is generated until it is renamed (else: CS0102 in generated code).
            foreach (MemberCollision collision in network.Collisions)
            {
                LocationInfo? location = null;
                foreach (MemberLocations l in locations)
                {
                    if (l.DisplayName == network.DisplayName) location = l.Find(collision.Name, collision.ParameterCount) ?? l.ClassLocation;
                }
                context.ReportDiagnostic(DiagnosticInfo.Create(DiagnosticDescriptors.MemberCollision, location,
                    collision.Name == ".ctor" ? network.ClassName + " (constructor)" : collision.Name, network.DisplayName, collision.What).ToDiagnostic());
            }
            return;
        }
        foreach (GeneratedFile file in network.Files)
        {
            context.AddSource(file.HintName, SourceText.From(file.Text, System.Text.Encoding.UTF8));
        }
    }
}

/// <summary>One generated file: its hint name and text.</summary>
internal sealed record GeneratedFile(string HintName, string Text);

/// <summary>A user member that C# would reject beside a generated one; What says which kind of member it meets.</summary>
internal sealed record MemberCollision(string Name, int ParameterCount, string What);

/// <summary>What the output step needs of one network: its diagnostics, its files, and its members that collide.</summary>
internal sealed record EmittedNetwork(
    string DisplayName, string ClassName, EquatableArray<DiagnosticInfo> Diagnostics, EquatableArray<GeneratedFile> Files,
    EquatableArray<MemberCollision> Collisions)
{
    public static EmittedNetwork From(NetworkResult result)
    {
        // With errors the model is null and nothing is generated, so the user sees only the diagnostics.
        if (result.Model is not { } model)
            return new EmittedNetwork(result.DisplayName, "", result.Diagnostics, EquatableArray<GeneratedFile>.Empty, EquatableArray<MemberCollision>.Empty);
        try
        {
            // Lowering decides how each backend runs the network; the emitters print those plans.
            ExecutionPlan cpuPlan = Lowerer.Lower(model, Backend.Cpu);
            ExecutionPlan cudaPlan = Lowerer.Lower(model, Backend.Cuda);
            var files = new List<GeneratedFile> { new(model.HintPrefix + ".g.cs", ModelEmitter.Emit(model, cpuPlan)) };
            if (CpuEmitter.Emit(model, cpuPlan) is { } cpu) files.Add(new GeneratedFile(model.HintPrefix + ".Cpu.g.cs", cpu));
            if (CudaEmitter.Emit(model, cudaPlan) is { } cuda) files.Add(new GeneratedFile(model.HintPrefix + ".Cuda.g.cs", cuda));

            var collisions = new List<MemberCollision>();
            foreach ((UserMember user, GeneratedMembers.Member generated) in
                GeneratedMembers.Collisions(GeneratedMembers.Declared(model.ClassName, files.Select(f => f.Text)), result.UserMembers))
            {
                string what = generated.IsMethod ? $" (a method with {generated.ParameterCount} parameter{(generated.ParameterCount == 1 ? "" : "s")})" : "";
                collisions.Add(new MemberCollision(user.Name, user.ParameterCount, what));
            }
            return new EmittedNetwork(result.DisplayName, model.ClassName, result.Diagnostics, files.ToEquatableArray(), collisions.ToEquatableArray());
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            var failure = DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, null, result.DisplayName, exception.GetType().Name + ": " + exception.Message);
            return new EmittedNetwork(result.DisplayName, model.ClassName, result.Diagnostics.Items.Add(failure).ToEquatableArray(),
                EquatableArray<GeneratedFile>.Empty, EquatableArray<MemberCollision>.Empty);
        }
    }
}

/// <summary>Names of the pipeline steps, for incrementality tests (GeneratorRunResult.TrackedSteps).</summary>
internal static class TrackingNames
{
    public const string NetworkSpecs = "NetworkSpecs";
    public const string NetworkModels = "NetworkModels";
    public const string EmittedNetworks = "EmittedNetworks";
}
