# The paper's four variants at GPT-2-small scale on one GPU, GSM8k (an eval.py config):
#   python eval.py configs/eval_gpt2_gsm8k.py
# StdPT and PausePT pretrain GPT-2 small from scratch on prepared text (configs/gpt2_124m.py; set its
# data_dir), then each is finetuned on GSM8k with and without M_ft = 10 pauses and scored on test_file.
# For StdPT from OpenAI's GPT-2 weights instead, run configs/gpt2_pauseft_gsm8k.py with --n_pause=0/10.
pretrain_config = "configs/gpt2_124m.py"
finetune_config = "configs/gpt2_pauseft_gsm8k.py"
n_pause = 10
pause_frac = 0.1
seeds = 5
plot = True
out_dir = "out/gpt2_gsm8k"
