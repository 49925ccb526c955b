using System;
using System.Collections.Generic;
using AlexNetCompiler.Generators.Diagnostics;
using AlexNetCompiler.Generators.Emitters;
using AlexNetCompiler.Generators.Lowering;
using AlexNetCompiler.Generators.Model;
using AlexNetCompiler.Generators.Inference;
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

        context.RegisterSourceOutput(results, static (context, result) => Emit(context, result));
    }

    private static void Emit(SourceProductionContext context, NetworkResult result)
    {
        foreach (DiagnosticInfo diagnostic in result.Diagnostics)
        {
            context.ReportDiagnostic(diagnostic.ToDiagnostic());
        }
        // With errors the model is null and nothing is generated, so the user sees only the diagnostics.
        if (result.Model is not { } model) return;

        try
        {
            // Lowering decides how each backend runs the network; the emitters print those plans.
            ExecutionPlan cpuPlan = Lowerer.Lower(model, Backend.Cpu);
            ExecutionPlan cudaPlan = Lowerer.Lower(model, Backend.Cuda);
            string model_ = ModelEmitter.Emit(model, cpuPlan);
            string? cpu = CpuEmitter.Emit(model, cpuPlan);
            string? cuda = CudaEmitter.Emit(model, cudaPlan);

            // A user member named like a generated one would only show as CS0102 inside a generated file: report it
            // at the user's member instead, and generate nothing until it is renamed.
            var files = new List<string> { model_ };
            if (cpu is not null) files.Add(cpu);
            if (cuda is not null) files.Add(cuda);
            List<(UserMember User, GeneratedMembers.Member Generated)> collisions =
                GeneratedMembers.Collisions(GeneratedMembers.Declared(model.ClassName, files), result.UserMembers);
            foreach ((UserMember user, GeneratedMembers.Member generated) in collisions)
            {
                string kind = generated.IsMethod ? $" (a method with {generated.ParameterCount} parameter{(generated.ParameterCount == 1 ? "" : "s")})" : "";
                context.ReportDiagnostic(DiagnosticInfo.Create(DiagnosticDescriptors.MemberCollision, user.Location,
                    user.Name == ".ctor" ? model.ClassName + " (constructor)" : user.Name, result.DisplayName, kind).ToDiagnostic());
            }
            if (collisions.Count > 0) return;

            context.AddSource(model.HintPrefix + ".g.cs", SourceText.From(model_, System.Text.Encoding.UTF8));
            if (cpu is not null) context.AddSource(model.HintPrefix + ".Cpu.g.cs", SourceText.From(cpu, System.Text.Encoding.UTF8));
            if (cuda is not null) context.AddSource(model.HintPrefix + ".Cuda.g.cs", SourceText.From(cuda, System.Text.Encoding.UTF8));
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.InternalError, Location.None,
                result.DisplayName, exception.GetType().Name + ": " + exception.Message));
        }
    }
}

/// <summary>Names of the pipeline steps, for incrementality tests (GeneratorRunResult.TrackedSteps).</summary>
internal static class TrackingNames
{
    public const string NetworkSpecs = "NetworkSpecs";
    public const string NetworkModels = "NetworkModels";
}
