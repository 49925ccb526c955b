using System;
using System.Collections.Generic;
using System.Linq;
using AlexNetCompiler.Generators.Diagnostics;
using AlexNetCompiler.Generators.Lowering;
using AlexNetCompiler.Generators.Model;

namespace AlexNetCompiler.Generators.Emitters;

/// <summary>One generated file: its hint name and text.</summary>
internal sealed record GeneratedFile(string HintName, string Text);

/// <summary>A name of the user's that collides with a generated member, and that member (e.g. "constant 'ParameterCount'").</summary>
internal sealed record MemberCollision(UserMemberName User, string Generated)
{
    /// <summary>ANC0023 at the user's member, naming both members and what to do.</summary>
    public DiagnosticInfo ToDiagnostic(string network, LocationInfo? location)
    {
        string inherited = User.InheritedFrom.Length > 0 ? $", inherited from '{User.InheritedFrom}'," : "";
        (string user, string remedy) = User.Kind switch
        {
            MemberKind.ClassName => ($"Class name '{User.Display}'", "rename the class"),
            MemberKind.PrimaryConstructor => ($"Primary constructor '{User.Display}'", "declare an ordinary constructor instead"),
            MemberKind.Constructor => ($"Constructor '{User.Display}'", "change its parameters"),
            MemberKind.Method => ($"Method '{User.Display}'{inherited}", inherited.Length > 0 ? "rename it in the base class" : "rename it or change its parameters"),
            _ => ($"Member '{User.Display}'{inherited}", inherited.Length > 0 ? "rename it in the base class" : "rename it"),
        };
        return DiagnosticInfo.Create(DiagnosticDescriptors.MemberCollision, location, user, Generated, network, remedy);
    }
}

/// <summary>The collisions of one network, joined with the user's member locations for the diagnostics.</summary>
internal sealed record NetworkCollisions(string DisplayName, EquatableArray<MemberCollision> Collisions);

/// <summary>
/// What the emitters make of one network: its diagnostics, its files, and the user's names that collide with the
/// generated members (then none of the files is added). A value that compares by content, so that an edit which
/// leaves the model and the user's member names as they were reuses the generated text without emitting it again.
/// </summary>
internal sealed record GeneratedNetwork(
    string DisplayName,
    EquatableArray<DiagnosticInfo> Diagnostics,
    EquatableArray<GeneratedFile> Files,
    EquatableArray<MemberCollision> Collisions)
{
    public static GeneratedNetwork Create(NetworkResult result)
    {
        // With errors the model is null and nothing is generated, so the user sees only the diagnostics.
        if (result.Model is not { } model)
        {
            return new GeneratedNetwork(result.DisplayName, result.Diagnostics, EquatableArray<GeneratedFile>.Empty, EquatableArray<MemberCollision>.Empty);
        }

        try
        {
            // Lowering decides how each backend runs the network; the emitters print those plans.
            ExecutionPlan cpuPlan = Lowerer.Lower(model, Backend.Cpu);
            ExecutionPlan cudaPlan = Lowerer.Lower(model, Backend.Cuda);
            var files = new List<GeneratedFile> { new(model.HintPrefix + ".g.cs", ModelEmitter.Emit(model, cpuPlan)) };
            if (CpuEmitter.Emit(model, cpuPlan) is { } cpu) files.Add(new GeneratedFile(model.HintPrefix + ".Cpu.g.cs", cpu));
            if (CudaEmitter.Emit(model, cudaPlan) is { } cuda) files.Add(new GeneratedFile(model.HintPrefix + ".Cuda.g.cs", cuda));

            // A user's member named like a generated one would only show as an error (CS0102, CS0111) inside a
            // generated file: it is reported at the user's member instead, and nothing is generated until it is renamed.
            List<GeneratedMembers.Member> generated = GeneratedMembers.Declared(model.ClassName, files.Select(f => f.Text));
            List<MemberCollision> collisions = GeneratedMembers.Collisions(generated, result.UserMembers);
            return new GeneratedNetwork(result.DisplayName, result.Diagnostics, files.ToEquatableArray(), collisions.ToEquatableArray());
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            var diagnostics = new List<DiagnosticInfo>(result.Diagnostics)
            {
                DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, null, result.DisplayName, exception.GetType().Name + ": " + exception.Message),
            };
            return new GeneratedNetwork(result.DisplayName, diagnostics.ToEquatableArray(), EquatableArray<GeneratedFile>.Empty, EquatableArray<MemberCollision>.Empty);
        }
    }
}
