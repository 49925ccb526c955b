using System.Globalization;
using System.Text;
using System.Text.Json;

namespace FashionMnist.App;

/// <summary>metrics.csv (one row per epoch) and training-log.json (settings, data, epochs, final evaluation).</summary>
public static class MetricsLog
{
    public const string CsvName = "metrics.csv";
    public const string JsonName = "training-log.json";

    public static void WriteCsv(string path, IReadOnlyList<EpochRecord> history)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder("epoch,learning_rate,train_loss,train_accuracy,test_loss,test_accuracy,seconds,images_per_second\n");
        foreach (EpochRecord r in history)
            sb.AppendLine(string.Join(",", r.Epoch.ToString(ci), r.LearningRate.ToString("G6", ci), r.TrainLoss.ToString("F6", ci), r.TrainAccuracy.ToString("F6", ci),
                r.TestLoss.ToString("F6", ci), r.TestAccuracy.ToString("F6", ci), r.Seconds.ToString("F3", ci), r.ImagesPerSecond.ToString("F1", ci)));
        WriteAtomically(path, Encoding.UTF8.GetBytes(sb.ToString().Replace("\r\n", "\n")));
    }

    public static void WriteJson(string path, Trainer trainer, string device, string status)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            TrainSettings s = trainer.Settings;
            w.WriteStartObject();
            w.WriteString("network", trainer.Network.Descriptor.Name);
            w.WriteNumber("parameters", trainer.Network.Descriptor.ParameterCount);
            w.WriteString("data", trainer.Data.Description);
            w.WriteString("device", device);
            w.WriteString("status", status);
            w.WriteStartObject("settings");
            w.WriteNumber("epochs", s.Epochs);
            w.WriteNumber("batch_size", s.BatchSize);
            w.WriteNumber("learning_rate", s.LearningRate);
            w.WriteString("schedule", s.Schedule.ToString().ToLowerInvariant());
            w.WriteNumber("lr_step_epochs", s.EffectiveStepEpochs);
            w.WriteNumber("patience", s.Patience);
            w.WriteNumber("momentum", s.Momentum);
            w.WriteNumber("weight_decay", s.WeightDecay);
            w.WriteString("optimizer", s.Optimizer.ToString());
            w.WriteString("init", s.Init.ToString().ToLowerInvariant());
            w.WriteNumber("seed", s.Seed);
            w.WriteString("augmentation", s.Augmentation.ToString());
            w.WriteEndObject();
            w.WriteStartArray("normalization_mean");
            foreach (float v in trainer.Normalization.Mean) w.WriteNumberValue(v);
            w.WriteEndArray();
            w.WriteStartArray("normalization_std");
            foreach (float v in trainer.Normalization.Std) w.WriteNumberValue(v);
            w.WriteEndArray();
            w.WriteStartArray("epochs");
            foreach (EpochRecord r in trainer.History)
            {
                w.WriteStartObject();
                w.WriteNumber("epoch", r.Epoch);
                w.WriteNumber("learning_rate", r.LearningRate);
                WriteFinite(w, "train_loss", r.TrainLoss);
                WriteFinite(w, "train_accuracy", r.TrainAccuracy);
                WriteFinite(w, "test_loss", r.TestLoss);
                WriteFinite(w, "test_accuracy", r.TestAccuracy);
                WriteFinite(w, "seconds", r.Seconds);
                WriteFinite(w, "images_per_second", r.ImagesPerSecond);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            WriteFinite(w, "best_test_accuracy", trainer.BestAccuracy);
            w.WriteNumber("best_epoch", trainer.BestEpoch);
            if (trainer.FinalViewsEvaluation is { } views)
            {
                // Test-time averaging over several views of each test image (Evaluator.Evaluate), final parameters.
                w.WriteStartObject("final_multi_view_evaluation");
                w.WriteNumber("views", trainer.FinalViews);
                WriteFinite(w, "accuracy", views.Accuracy);
                WriteFinite(w, "loss", views.Loss);
                w.WriteEndObject();
            }
            if (trainer.LastEvaluation is { } e)
            {
                w.WriteStartObject("last_evaluation");
                WriteFinite(w, "accuracy", e.Accuracy);
                w.WriteStartObject("per_class_accuracy");
                double[] perClass = e.PerClassAccuracy();
                for (int c = 0; c < perClass.Length; c++) WriteFinite(w, e.ClassNames[c], perClass[c]);
                w.WriteEndObject();
                w.WriteStartArray("confusion_matrix");
                for (int t = 0; t < e.ClassNames.Count; t++)
                {
                    w.WriteStartArray();
                    for (int p = 0; p < e.ClassNames.Count; p++) w.WriteNumberValue(e.Confusion[t, p]);
                    w.WriteEndArray();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        WriteAtomically(path, buffer.ToArray());
    }

    /// <summary>JSON has no NaN: write null instead.</summary>
    private static void WriteFinite(Utf8JsonWriter w, string name, double value)
    {
        if (double.IsFinite(value)) w.WriteNumber(name, value);
        else w.WriteNull(name);
    }

    private static void WriteAtomically(string path, byte[] bytes)
    {
        string temporary = path + ".tmp";
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, path, overwrite: true);
    }
}
