"""A tiny StableDiffusionPipeline built from configs with random weights (no downloads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from s4s.zoo.latent import byte_clip_tokenizer, small_clip


def tiny_stable_diffusion(folder: Path, seed: int = 0) -> Any:
    """UNet2DConditionModel + AutoencoderKL + CLIP text model and a byte-level CLIP tokenizer
    (no merges) with a DDIM scheduler on SD's scaled-linear betas; 16x16 images, 4x8x8 latents."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer, vocab = byte_clip_tokenizer(folder)
    torch.manual_seed(seed)
    eos = vocab["<|endoftext|>"]
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1,
        max_position_embeddings=16, bos_token_id=vocab["<|startoftext|>"], eos_token_id=eos, pad_token_id=eos))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4, sample_size=16)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_sd3(folder: Path, seed: int = 0) -> Any:
    """A StableDiffusion3Pipeline from configs with random weights: a one-layer SD3Transformer2DModel
    (patch 1) on 4x8x8 latents, two tiny CLIP text encoders with projections (no T5: its
    embeddings are zeros, as the pipeline makes them without one), an AutoencoderKL with SD3's
    scaling and shift, FlowMatchEulerDiscreteScheduler(shift=3); 16x16 images."""
    from diffusers import (AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel,
                           StableDiffusion3Pipeline)
    tokenizer, vocab = byte_clip_tokenizer(folder)
    torch.manual_seed(seed)
    text_encoder, text_encoder_2 = small_clip(vocab), small_clip(vocab)
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=32, caption_projection_dim=16, pooled_projection_dim=32, out_channels=4,
        pos_embed_max_size=16)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4, sample_size=16,
        scaling_factor=1.5305, shift_factor=0.0609, use_quant_conv=False, use_post_quant_conv=False)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
        text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer,
        text_encoder_3=None, tokenizer_3=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_sdxl(folder: Path, seed: int = 0) -> Any:
    """A StableDiffusionXLPipeline from configs with random weights: a UNet with SDXL's added
    conditioning (pooled text embeddings and six time ids), a CLIP text encoder and one with a
    projection (hidden states concatenated: 32 channels), the zeroed negative embeddings of
    ``force_zeros_for_empty_prompt``, an Euler scheduler on SD's scaled-linear betas; 16x16 images."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer, vocab = byte_clip_tokenizer(folder)
    eos = vocab["<|endoftext|>"]
    torch.manual_seed(seed)
    config = CLIPTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_attention_heads=2,
                            num_hidden_layers=2, max_position_embeddings=16, projection_dim=16,
                            bos_token_id=vocab["<|startoftext|>"], eos_token_id=eos, pad_token_id=eos)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=6 * 8 + 16,
        cross_attention_dim=32, norm_num_groups=4)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4, sample_size=16,
        scaling_factor=0.13025)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="leading", steps_offset=1)
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=CLIPTextModel(config), text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler, force_zeros_for_empty_prompt=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_flux(folder: Path, seed: int = 0) -> Any:
    """A FluxPipeline from configs with random weights: a FluxTransformer2DModel (one double and
    one single block, guidance embedding) on packed 2x2 patches of 4x8x8 latents (16 tokens of
    16 channels), a tiny CLIP text encoder (pooled) and a tiny T5 encoder (the byte-level CLIP
    tokenizer stands in for T5's), an AutoencoderKL with Flux's scaling and shift, and
    FlowMatchEulerDiscreteScheduler with dynamic shifting; 16x16 images."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    tokenizer, vocab = byte_clip_tokenizer(folder)
    eos = vocab["<|endoftext|>"]
    torch.manual_seed(seed)
    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1,
        max_position_embeddings=16, bos_token_id=vocab["<|startoftext|>"], eos_token_id=eos, pad_token_id=eos))
    t5 = T5EncoderModel(T5Config(vocab_size=len(vocab), d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                                 pad_token_id=eos, eos_token_id=eos))
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=32, pooled_projection_dim=16, guidance_embeds=True, axes_dims_rope=(2, 2, 4))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4, sample_size=16,
        scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=4096)
    pipe = FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=clip.eval(), tokenizer=tokenizer,
                        text_encoder_2=t5.eval(), tokenizer_2=tokenizer, transformer=transformer)  # eval: as loaded
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_wan(folder: Path, seed: int = 0) -> Any:
    """A WanPipeline (Wan 2.1 text-to-video) from configs with random weights: a two-layer
    WanTransformer3DModel (patches 1x2x2), an AutoencoderKLWan (8x spatial, 4x temporal; latents
    16 x 2 x 4 x 4 for 5 frames of 32x32), a tiny UMT5 encoder (the byte-level CLIP tokenizer
    stands in for UMT5's), and Wan's UniPCMultistepScheduler in its flow mode (flow_shift 3)."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer, vocab = byte_clip_tokenizer(folder)
    eos = vocab["<|endoftext|>"]
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(vocab), d_model=32, d_kv=8, d_ff=32, num_layers=1,
                                               num_heads=2, pad_token_id=eos, eos_token_id=eos))
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder.eval(), transformer=transformer, vae=vae,
                       scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_sana(folder: Path, seed: int = 0) -> Any:
    """A SanaPipeline from configs with random weights: a one-layer SanaTransformer2DModel
    (linear attention, cross-attention to the text) on 4x16x16 latents, an AutoencoderDC (2x
    spatial), a tiny Gemma2 text encoder (the byte-level CLIP tokenizer stands in for Gemma's;
    the pipeline's long default instruction is tokenised as bytes), and Sana's
    DPMSolverMultistepScheduler in its flow mode (flow_shift 3); 32x32 images."""
    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaPipeline, SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    tokenizer, vocab = byte_clip_tokenizer(folder)
    eos = vocab["<|endoftext|>"]
    torch.manual_seed(seed)
    text_encoder = Gemma2Model(Gemma2Config(
        vocab_size=len(vocab), hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, head_dim=4, max_position_embeddings=4096, pad_token_id=eos, eos_token_id=eos,
        bos_token_id=vocab["<|startoftext|>"]))
    transformer = SanaTransformer2DModel(
        patch_size=1, in_channels=4, out_channels=4, num_layers=1, num_attention_heads=2, attention_head_dim=4,
        num_cross_attention_heads=2, cross_attention_head_dim=4, cross_attention_dim=8, caption_channels=8,
        sample_size=16)
    vae = AutoencoderDC(
        in_channels=3, latent_channels=4, attention_head_dim=2, encoder_block_types=("ResBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "EfficientViTBlock"), encoder_block_out_channels=(8, 8),
        decoder_block_out_channels=(8, 8), encoder_qkv_multiscales=((), (5,)), decoder_qkv_multiscales=((), (5,)),
        encoder_layers_per_block=(1, 1), decoder_layers_per_block=(1, 1), downsample_block_type="conv",
        upsample_block_type="interpolate", decoder_norm_types="rms_norm", decoder_act_fns="silu",
        scaling_factor=0.41407)
    scheduler = DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    pipe = SanaPipeline(tokenizer=tokenizer, text_encoder=text_encoder.eval(), vae=vae, transformer=transformer,
                        scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_qwen_image(folder: Path, seed: int = 0) -> Any:
    """A QwenImagePipeline from configs with random weights: a one-layer
    QwenImageTransformer2DModel on packed 4x8x8 latents (16 tokens of 2x2x4), an
    AutoencoderKLQwenImage (2x spatial, one frame, per-channel latent mean and std), a tiny
    Qwen2.5-VL text encoder (the byte-level CLIP tokenizer stands in for Qwen's; the pipeline's
    prompt template is tokenised as bytes), and Qwen-Image's FlowMatchEulerDiscreteScheduler
    (dynamic exponential shift, shift_terminal 0.02); 16x16 images."""
    from diffusers import (AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImagePipeline,
                           QwenImageTransformer2DModel)
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tokenizer, vocab = byte_clip_tokenizer(folder)
    ids = dict(bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"])
    torch.manual_seed(seed)
    text_encoder = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(
        text_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, vocab_size=len(vocab), **ids,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [1, 1, 2]}),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=16, num_heads=2, out_hidden_size=16,
                           fullatt_block_indexes=[0]),
        vocab_size=len(vocab), **ids))
    transformer = QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=1,
                                              attention_head_dim=8, num_attention_heads=2, joint_attention_dim=16,
                                              axes_dims_rope=(2, 2, 4))
    vae = AutoencoderKLQwenImage(base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[False],
                                 latents_mean=[0.1, -0.2, 0.3, 0.0], latents_std=[1.5, 0.8, 1.2, 1.0])
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
                                                base_image_seq_len=256, max_image_seq_len=8192, shift_terminal=0.02,
                                                time_shift_type="exponential")
    pipe = QwenImagePipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder.eval(), tokenizer=tokenizer,
                             transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe
